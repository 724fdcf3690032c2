// Package testimage makes the smallest disk image that boots: a 1 MiB raw
// disk whose master boot record is a few dozen bytes of x86 real-mode code.
// It initialises the first serial port (COM1, I/O port 0x3f8), prints Line
// followed by CR LF, and halts forever, so a domain booted from it stays
// running and every boot (the first, a reset, a reboot) adds one Line to
// its serial console log.
//
// Tests of the libvirt driver and end-to-end tests use it as a Glance image
// (disk_format raw): no network download, no operating system, and it boots
// in well under a second even under QEMU's TCG emulation.
package testimage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
)

// Line is what the image prints on COM1 at every boot (without CR LF).
const Line = "keel test image: booted"

// Size is the size of the raw image: 1 MiB, so it rounds to a whole number
// of sectors and of qcow2 clusters, and firmware sees a plausible disk.
const Size = 1 << 20

// loadAddr is where the BIOS loads the boot sector and jumps to, in
// segment 0.
const loadAddr = 0x7c00

// bootCode is the boot sector's program, assembled by hand, one instruction
// per element. The CPU starts it in 16-bit real mode with CS:IP = 0000:7c00
// and (for us) unknown values in the other segment registers. Comments give
// each instruction's offset in the sector; jump displacements are relative
// to the address of the next instruction.
//
// The operand of "mov si, msg" is the message's address, patched in by
// BootSector because the message follows the code.
var bootCode = bytes.Join([][]byte{
	{0xfa},             // 00: cli            no interrupts: nothing of ours handles them
	{0x31, 0xc0},       // 01: xor ax, ax
	{0x8e, 0xd8},       // 03: mov ds, ax     DS = 0: lodsb reads DS:SI, the message
	{0x8e, 0xd0},       // 05: mov ss, ax     SS:SP = 0000:7c00, a stack below the code
	{0xbc, 0x00, 0x7c}, // 07: mov sp, 0x7c00
	{0xfc},             // 0a: cld            lodsb walks forward

	// Program the 16550 UART of COM1: 115200 baud (divisor 1), 8 data
	// bits, no parity, 1 stop bit, FIFOs on, DTR and RTS raised.
	{0xba, 0xf9, 0x03}, // 0b: mov dx, 0x3f9  interrupt enable register
	{0xb0, 0x00},       // 0e: mov al, 0x00   no UART interrupts
	{0xee},             // 10: out dx, al
	{0xba, 0xfb, 0x03}, // 11: mov dx, 0x3fb  line control register
	{0xb0, 0x80},       // 14: mov al, 0x80   DLAB = 1: 0x3f8 and 0x3f9 are now the divisor
	{0xee},             // 16: out dx, al
	{0xba, 0xf8, 0x03}, // 17: mov dx, 0x3f8  divisor, low byte
	{0xb0, 0x01},       // 1a: mov al, 0x01   115200 / 1
	{0xee},             // 1c: out dx, al
	{0xba, 0xf9, 0x03}, // 1d: mov dx, 0x3f9  divisor, high byte
	{0xb0, 0x00},       // 20: mov al, 0x00
	{0xee},             // 22: out dx, al
	{0xba, 0xfb, 0x03}, // 23: mov dx, 0x3fb  line control register
	{0xb0, 0x03},       // 26: mov al, 0x03   DLAB = 0, 8 data bits, no parity, 1 stop bit
	{0xee},             // 28: out dx, al
	{0xba, 0xfa, 0x03}, // 29: mov dx, 0x3fa  FIFO control register
	{0xb0, 0xc7},       // 2c: mov al, 0xc7   enable and clear the FIFOs
	{0xee},             // 2e: out dx, al
	{0xba, 0xfc, 0x03}, // 2f: mov dx, 0x3fc  modem control register
	{0xb0, 0x03},       // 32: mov al, 0x03   DTR | RTS
	{0xee},             // 34: out dx, al

	{0xbe, 0x00, 0x00}, // 35: mov si, msg    operand patched by BootSector

	// next: send the NUL-terminated string at DS:SI.
	{0xac},             // 38: lodsb          AL = [DS:SI], SI++
	{0x84, 0xc0},       // 39: test al, al
	{0x74, 0x12},       // 3b: jz halt        end of string: 0x3d + 0x12 = 0x4f
	{0x88, 0xc3},       // 3d: mov bl, al     keep the character while polling
	{0xba, 0xfd, 0x03}, // 3f: mov dx, 0x3fd  line status register
	{0xec},             // 42: wait: in al, dx
	{0xa8, 0x20},       // 43: test al, 0x20  transmit holding register empty?
	{0x74, 0xfb},       // 45: jz wait        not yet: 0x47 - 5 = 0x42
	{0x88, 0xd8},       // 47: mov al, bl
	{0xba, 0xf8, 0x03}, // 49: mov dx, 0x3f8  transmit holding register
	{0xee},             // 4c: out dx, al
	{0xeb, 0xe9},       // 4d: jmp next       0x4f - 0x17 = 0x38

	// With interrupts off, hlt stops the CPU until a reset (or an NMI,
	// after which it halts again). ACPI power-button events are ignored:
	// the driver's soft-reboot and power-off fallbacks are tested so.
	{0xf4},       // 4f: halt: hlt
	{0xeb, 0xfd}, // 50: jmp halt       0x52 - 3 = 0x4f
}, nil)

// Offsets in bootCode that the tests check against the hand-computed jumps.
const (
	msgImm       = 0x36 // the operand of "mov si, msg"
	jzHaltOffset = 0x3b // "jz halt"
	haltOffset   = 0x4f // "hlt"
)

// BootSector returns the 512-byte master boot record: code, message, zero
// padding and the 0x55 0xaa signature the BIOS requires.
func BootSector() []byte {
	msg := append([]byte(Line), '\r', '\n', 0)
	sector := make([]byte, 512)
	n := copy(sector, bootCode)
	copy(sector[n:], msg)
	binary.LittleEndian.PutUint16(sector[msgImm:], uint16(loadAddr+n))
	sector[510], sector[511] = 0x55, 0xaa
	return sector
}

// Raw returns the whole raw disk image: the boot sector followed by zeros,
// Size bytes in all.
func Raw() []byte {
	img := make([]byte, Size)
	copy(img, BootSector())
	return img
}

// Write writes the raw image to path (mode 0644: QEMU, which may run as
// another user, must be able to read it).
func Write(path string) error {
	if err := os.WriteFile(path, Raw(), 0o644); err != nil {
		return fmt.Errorf("testimage: write %s: %w", path, err)
	}
	return nil
}
