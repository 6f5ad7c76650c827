package rules

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxUserNameLen is the longest login name (in bytes) a peer may ask for.
const MaxUserNameLen = 256

// CheckUserName returns an error naming the problem when name cannot be a requested SSH
// login: empty, longer than MaxUserNameLen bytes, invalid UTF-8, a NUL or other control
// byte (below 0x20, 0x7f, C1), whitespace, '/', ':', a leading '-', or "." or "..".
// Every layer that takes a login name (control's user picker, the agent, its SSH server)
// checks it with this before any lookup or rule match; names such as alice@corp.example
// (SSSD) pass. The error never repeats the name, so it is safe to show and log.
func CheckUserName(name string) error {
	switch {
	case name == "":
		return errors.New("the user name is empty")
	case len(name) > MaxUserNameLen:
		return fmt.Errorf("the user name is %d bytes long, more than %d", len(name), MaxUserNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("the user name %q is not a name", name)
	case name[0] == '-':
		return errors.New("the user name starts with '-'")
	}
	for i := 0; i < len(name); {
		r, n := utf8.DecodeRuneInString(name[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			return fmt.Errorf("the user name has invalid UTF-8 at byte %d", i)
		case r == 0:
			return fmt.Errorf("the user name contains a NUL byte at byte %d", i)
		case unicode.IsSpace(r):
			return fmt.Errorf("the user name contains whitespace at byte %d", i)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			return fmt.Errorf("the user name contains control character %U at byte %d", r, i)
		case r == '/' || r == ':':
			return fmt.Errorf("the user name contains %q at byte %d", r, i)
		}
		i += n
	}
	return nil
}
