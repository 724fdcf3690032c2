package main

import (
	"fmt"

	"github.com/keel-cloud/keel/internal/testimage"
)

// testImage writes Keel's tiny bootable test disk: a raw image whose boot
// sector prints a line on the serial console and idles, so a cloud without
// any real guest image can boot servers and show their console.
func (a *app) testImage(args []string) error {
	fset := a.flags("test-image", "FILE", "write a tiny bootable raw disk image (prints to the serial console) to FILE")
	rest, err := parseArgs(fset, args, 1)
	if err != nil {
		return err
	}
	if err := testimage.Write(rest[0]); err != nil {
		return fmt.Errorf("write the test image: %w", err)
	}
	fmt.Fprintf(a.stdout, "wrote %s: upload it with\n  openstack image create --disk-format raw --container-format bare --public --file %s keel-test\n", rest[0], rest[0])
	return nil
}
