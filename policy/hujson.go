package policy

import (
	"fmt"
	"strings"

	"github.com/tailscale/hujson"
)

// This file reads the hujson syntax tree, keeping byte offsets for errors.

// pstr is a string from the policy file and the offset of its opening quote.
type pstr struct {
	s   string
	off int
}

// member is one name/value pair of an object.
type member struct {
	key    string
	keyOff int
	val    *hujson.Value
}

// reader turns hujson values into Go values and records positioned errors.
type reader struct {
	file string
	src  []byte
	errs ErrorList
}

func (r *reader) errf(off int, field, format string, args ...any) {
	line, col := lineCol(r.src, off)
	r.errs = append(r.errs, &Error{File: r.file, Line: line, Column: col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func kindName(v *hujson.Value) string {
	switch v.Value.Kind() {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a value"
}

// object returns the members of v, refusing non-objects and duplicate names.
func (r *reader) object(v *hujson.Value, field string) ([]member, bool) {
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		r.errf(v.StartOffset, field, "must be an object, not %s", kindName(v))
		return nil, false
	}
	var out []member
	seen := map[string]bool{}
	for i := range obj.Members {
		m := &obj.Members[i]
		name := m.Name.Value.(hujson.Literal).String()
		if seen[strings.ToLower(name)] {
			r.errf(m.Name.StartOffset, joinField(field, name), "defined twice")
			continue
		}
		seen[strings.ToLower(name)] = true
		out = append(out, member{key: name, keyOff: m.Name.StartOffset, val: &m.Value})
	}
	return out, true
}

// fields reads an object with a fixed set of field names (matched without regard
// to case, as the established format does). Unknown and unsupported fields are
// errors; unsupported maps a field name to the reason it is refused.
func (r *reader) fields(v *hujson.Value, field string, allowed []string, unsupported map[string]string) (map[string]member, bool) {
	ms, ok := r.object(v, field)
	if !ok {
		return nil, false
	}
	out := map[string]member{}
	good := true
	for _, m := range ms {
		name := ""
		for _, a := range allowed {
			if strings.EqualFold(a, m.key) {
				name = a
			}
		}
		if name == "" {
			good = false
			if why, ok := lookupFold(unsupported, m.key); ok {
				r.errf(m.keyOff, joinField(field, m.key), "%s", why)
			} else {
				what := "field"
				if field == "" {
					what = "section"
				}
				r.errf(m.keyOff, joinField(field, m.key), "unknown %s (known: %s)", what, strings.Join(allowed, ", "))
			}
			continue
		}
		out[name] = m
	}
	return out, good
}

func lookupFold(m map[string]string, k string) (string, bool) {
	for mk, v := range m {
		if strings.EqualFold(mk, k) {
			return v, true
		}
	}
	return "", false
}

func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// str reads a string value.
func (r *reader) str(v *hujson.Value, field string) (pstr, bool) {
	lit, ok := v.Value.(hujson.Literal)
	if !ok || lit.Kind() != '"' {
		r.errf(v.StartOffset, field, "must be a string, not %s", kindName(v))
		return pstr{}, false
	}
	return pstr{s: lit.String(), off: v.StartOffset}, true
}

// boolean reads a true or false value.
func (r *reader) boolean(v *hujson.Value, field string) (bool, bool) {
	lit, ok := v.Value.(hujson.Literal)
	if !ok || (lit.Kind() != 't' && lit.Kind() != 'f') {
		r.errf(v.StartOffset, field, "must be true or false, not %s", kindName(v))
		return false, false
	}
	return lit.Bool(), true
}

// strList reads a list of strings. A lone string is refused: the format wants lists.
func (r *reader) strList(v *hujson.Value, field string) ([]pstr, bool) {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		r.errf(v.StartOffset, field, "must be a list of strings, not %s", kindName(v))
		return nil, false
	}
	out := make([]pstr, 0, len(arr.Elements))
	good := true
	for i := range arr.Elements {
		s, ok := r.str(&arr.Elements[i], field)
		if !ok {
			good = false
			continue
		}
		out = append(out, s)
	}
	return out, good
}

// list returns the elements of a list value.
func (r *reader) list(v *hujson.Value, field string) ([]*hujson.Value, bool) {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		r.errf(v.StartOffset, field, "must be a list, not %s", kindName(v))
		return nil, false
	}
	out := make([]*hujson.Value, len(arr.Elements))
	for i := range arr.Elements {
		out[i] = &arr.Elements[i]
	}
	return out, true
}
