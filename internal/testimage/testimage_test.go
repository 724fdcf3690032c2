package testimage

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBootSectorLayout(t *testing.T) {
	s := BootSector()
	if len(s) != 512 {
		t.Fatalf("boot sector is %d bytes, want 512", len(s))
	}
	if s[510] != 0x55 || s[511] != 0xaa {
		t.Fatalf("boot signature = %#x %#x, want 0x55 0xaa", s[510], s[511])
	}
	if s[msgImm-1] != 0xbe {
		t.Fatalf("byte before msgImm = %#x, want 0xbe (mov si, imm16)", s[msgImm-1])
	}
	msg := int(binary.LittleEndian.Uint16(s[msgImm:])) - loadAddr
	if msg != len(bootCode) {
		t.Fatalf("mov si points at offset %#x, want the end of the code %#x", msg, len(bootCode))
	}
	want := Line + "\r\n\x00"
	if got := string(s[msg : msg+len(want)]); got != want {
		t.Fatalf("message = %q, want %q", got, want)
	}
	// The hand-computed jumps land where the comments say.
	if s[haltOffset] != 0xf4 {
		t.Fatalf("byte at haltOffset = %#x, want 0xf4 (hlt)", s[haltOffset])
	}
	if s[jzHaltOffset] != 0x74 {
		t.Fatalf("byte at jzHaltOffset = %#x, want 0x74 (jz rel8)", s[jzHaltOffset])
	}
	if target := jzHaltOffset + 2 + int(int8(s[jzHaltOffset+1])); target != haltOffset {
		t.Fatalf("jz halt lands on %#x, want %#x", target, haltOffset)
	}
	last := len(bootCode) - 2 // jmp halt
	if target := last + 2 + int(int8(s[last+1])); s[last] != 0xeb || target != haltOffset {
		t.Fatalf("final jmp (%#x) lands on %#x, want %#x", s[last], target, haltOffset)
	}
}

func TestRaw(t *testing.T) {
	img := Raw()
	if len(img) != Size {
		t.Fatalf("image is %d bytes, want %d", len(img), Size)
	}
	if !bytes.Equal(img[:512], BootSector()) {
		t.Fatal("image does not start with the boot sector")
	}
	if bytes.IndexFunc(img[512:], func(r rune) bool { return r != 0 }) >= 0 {
		t.Fatal("image has non-zero bytes after the boot sector")
	}
	path := filepath.Join(t.TempDir(), "disk.raw")
	if err := Write(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("Write wrote something else (err %v)", err)
	}
}

// TestBootsUnderQEMU boots the image with TCG (no KVM needed) and reads
// COM1 from a file: the proof that the hand-assembled code works.
func TestBootsUnderQEMU(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 is not installed (scripts/install-libvirt.sh installs it)")
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	serial := filepath.Join(dir, "serial.log")
	if err := Write(disk); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu,
		"-machine", "pc,accel=tcg", "-m", "16", "-nodefaults", "-no-user-config",
		"-display", "none", "-monitor", "none",
		"-drive", "file="+disk+",format=raw,if=ide",
		"-serial", "file:"+serial)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()

	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := os.ReadFile(serial)
		if strings.Contains(string(out), Line+"\r\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the serial port after 15s; serial: %q; qemu stderr: %s", Line, out, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
