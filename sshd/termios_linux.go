package sshd

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// Encoded terminal modes (RFC 4254 section 8): opcode bytes each followed by a uint32,
// ended by 0 (TTY_OP_END); opcodes 160 and above are undefined and end parsing.
var (
	termChars = map[byte]int{
		1: unix.VINTR, 2: unix.VQUIT, 3: unix.VERASE, 4: unix.VKILL, 5: unix.VEOF, 6: unix.VEOL,
		7: unix.VEOL2, 8: unix.VSTART, 9: unix.VSTOP, 10: unix.VSUSP, 12: unix.VREPRINT,
		13: unix.VWERASE, 14: unix.VLNEXT, 18: unix.VDISCARD,
	}
	termIflags = map[byte]uint32{
		30: unix.IGNPAR, 31: unix.PARMRK, 32: unix.INPCK, 33: unix.ISTRIP, 34: unix.INLCR,
		35: unix.IGNCR, 36: unix.ICRNL, 37: unix.IUCLC, 38: unix.IXON, 39: unix.IXANY,
		40: unix.IXOFF, 41: unix.IMAXBEL, 42: unix.IUTF8,
	}
	termLflags = map[byte]uint32{
		50: unix.ISIG, 51: unix.ICANON, 52: unix.XCASE, 53: unix.ECHO, 54: unix.ECHOE,
		55: unix.ECHOK, 56: unix.ECHONL, 57: unix.NOFLSH, 58: unix.TOSTOP, 59: unix.IEXTEN,
		60: unix.ECHOCTL, 61: unix.ECHOKE, 62: unix.PENDIN,
	}
	termOflags = map[byte]uint32{
		70: unix.OPOST, 71: unix.OLCUC, 72: unix.ONLCR, 73: unix.OCRNL, 74: unix.ONOCR, 75: unix.ONLRET,
	}
	termCflags = map[byte]uint32{92: unix.PARENB, 93: unix.PARODD}
	termCsize  = map[byte]uint32{90: unix.CS7, 91: unix.CS8} // values of the CSIZE field, set when on
)

// applyTerminalModes sets the client's terminal modes (from "pty-req") on the slave.
// Unknown opcodes are skipped; malformed input applies what was parsed before it.
func applyTerminalModes(slave *os.File, modes []byte) error {
	if len(modes) == 0 {
		return nil
	}
	fd := int(slave.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	flag := func(p *uint32, bit uint32, on bool) {
		if on {
			*p |= bit
		} else {
			*p &^= bit
		}
	}
	for len(modes) >= 5 && modes[0] != 0 && modes[0] < 160 {
		op, v := modes[0], binary.BigEndian.Uint32(modes[1:5])
		modes = modes[5:]
		if i, ok := termChars[op]; ok {
			t.Cc[i] = uint8(v)
		} else if b, ok := termIflags[op]; ok {
			flag(&t.Iflag, b, v != 0)
		} else if b, ok := termLflags[op]; ok {
			flag(&t.Lflag, b, v != 0)
		} else if b, ok := termOflags[op]; ok {
			flag(&t.Oflag, b, v != 0)
		} else if b, ok := termCflags[op]; ok {
			flag(&t.Cflag, b, v != 0)
		} else if size, ok := termCsize[op]; ok && v != 0 {
			t.Cflag = t.Cflag&^unix.CSIZE | size
		}
		// 128/129 (speeds) and the rest are meaningless on a pseudo-terminal.
	}
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
