package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// secretShown stands for a secret value in a plan: plans are printed and
// logged, so they say a secret changes, never what it is.
const secretShown = "(secret)"

// diffConfig lists the fields in which before and after (two document
// objects of one type) differ, named as the document names them
// ("condition", "mapping.recipients", "settings.shared_secret"), in field
// order. It walks the message descriptors, so a field added to a Config*
// message is diffed without a change here. secret says which setting keys
// hold secrets.
func diffConfig(before, after proto.Message, secret func(key string) bool) []*harkv1.ConfigFieldChange {
	var out []*harkv1.ConfigFieldChange
	diffMessage(&out, "", before.ProtoReflect(), after.ProtoReflect(), secret)
	return out
}

func diffMessage(out *[]*harkv1.ConfigFieldChange, prefix string, a, b protoreflect.Message, secret func(string) bool) {
	fields := b.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := prefix + fd.JSONName()
		switch {
		case fd.IsMap():
			am, bm := mapStrings(a.Get(fd).Map()), mapStrings(b.Get(fd).Map())
			keys := slices.Sorted(maps.Keys(am))
			for k := range bm {
				if _, ok := am[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				av, bv := am[k], bm[k]
				if av == bv {
					continue
				}
				if secret != nil && secret(k) {
					av, bv = shownSecret(av), shownSecret(bv)
				}
				*out = append(*out, &harkv1.ConfigFieldChange{Field: name + "." + k, Before: av, After: bv})
			}
		case fd.IsList():
			av, bv := listString(a.Get(fd).List()), listString(b.Get(fd).List())
			if av != bv {
				*out = append(*out, &harkv1.ConfigFieldChange{Field: name, Before: av, After: bv})
			}
		case fd.Kind() == protoreflect.MessageKind:
			diffMessage(out, name+".", a.Get(fd).Message(), b.Get(fd).Message(), secret)
		default:
			av, bv := scalarString(a, fd), scalarString(b, fd)
			if av != bv {
				*out = append(*out, &harkv1.ConfigFieldChange{Field: name, Before: av, After: bv})
			}
		}
	}
}

func shownSecret(v string) string {
	if v == "" {
		return ""
	}
	return secretShown
}

func mapStrings(m protoreflect.Map) map[string]string {
	out := map[string]string{}
	m.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		out[k.String()] = fmt.Sprint(v.Interface())
		return true
	})
	return out
}

func listString(l protoreflect.List) string {
	parts := make([]string, l.Len())
	for i := range l.Len() {
		parts[i] = fmt.Sprint(l.Get(i).Interface())
	}
	return strings.Join(parts, ", ")
}

// scalarString is a scalar field's value as a plan shows it; an unset
// optional field (and an empty string) is "".
func scalarString(m protoreflect.Message, fd protoreflect.FieldDescriptor) string {
	if fd.HasPresence() && !m.Has(fd) {
		return ""
	}
	return fmt.Sprint(m.Get(fd).Interface())
}
