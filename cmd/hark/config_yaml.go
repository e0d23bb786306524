package main

import (
	"bytes"
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// The YAML form of a hark.v1.ConfigDocument. It is read and written by
// walking the message descriptors, so the document has exactly the proto's
// fields under their JSON names (lowerCamelCase), a field added to a
// Config* message is read and written without a change here, and every
// value keeps its position in the file: errors, the CLI's and the
// server's, name the file, line and field.

// docPos is where a field's value is in the file.
type docPos struct {
	line, column int
	// block is set for a block scalar (| or >), whose text starts on the
	// line after line.
	block bool
}

// configFile is a decoded document with the positions of its fields, by
// document path ("triggers[1].mapping.recipients").
type configFile struct {
	name     string
	doc      *harkv1.ConfigDocument
	pos      map[string]docPos
	sections []string // the top-level sections the file lists, in document order
}

// fileError is one thing wrong with a file, at a line.
type fileError struct {
	file  string
	line  int
	field string
	msg   string
}

func (e fileError) String() string {
	loc := e.file
	if e.line > 0 {
		loc = fmt.Sprintf("%s:%d", e.file, e.line)
	}
	if e.field == "" {
		return loc + ": " + e.msg
	}
	return loc + ": " + e.field + ": " + e.msg
}

// fileErrors is everything wrong with a file, one per line of output.
type fileErrors []fileError

func (es fileErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.String()
	}
	if len(lines) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%d problems:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// decodeConfig reads a document: unknown keys, values of the wrong type,
// repeated keys and a second document are errors; null is an unset field.
func decodeConfig(name string, data []byte) (*configFile, error) {
	f := &configFile{name: name, doc: &harkv1.ConfigDocument{}, pos: map[string]docPos{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		return nil, fileErrors{{file: name, line: yamlErrorLine(err), msg: "not YAML: " + err.Error()}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fileErrors{{file: name, line: extra.Line, msg: "holds more than one document; keep one per file"}}
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, fileErrors{{file: name, msg: "is empty"}}
	}
	top := root.Content[0]
	var errs fileErrors
	if top.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(top.Content); i += 2 {
			if k := top.Content[i].Value; slices.Contains(engine.ConfigSections, k) {
				f.sections = append(f.sections, k)
			}
		}
	}
	f.decodeMessage(&errs, top, f.doc.ProtoReflect(), "")
	if len(errs) > 0 {
		return nil, errs
	}
	if f.doc.GetApiVersion() == "" {
		return nil, fileErrors{{file: name, line: top.Line, field: "apiVersion", msg: fmt.Sprintf("is required: %q", engine.ConfigAPIVersion)}}
	}
	return f, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func yamlErrorLine(err error) int {
	var n int
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		fmt.Sscan(m[1], &n)
	}
	return n
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func (f *configFile) fail(errs *fileErrors, n *yaml.Node, field, format string, args ...any) {
	*errs = append(*errs, fileError{file: f.name, line: n.Line, field: field, msg: fmt.Sprintf(format, args...)})
}

func (f *configFile) decodeMessage(errs *fileErrors, n *yaml.Node, m protoreflect.Message, path string) {
	if n.Kind != yaml.MappingNode {
		f.fail(errs, n, path, "must be a mapping of fields, not %s", yamlKind(n))
		return
	}
	fields := m.Descriptor().Fields()
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := join(path, k.Value)
		fd := fields.ByJSONName(k.Value)
		if fd == nil {
			f.fail(errs, k, field, "unknown field (%s takes %s)", cmp.Or(path, "the document"), fieldNames(fields))
			continue
		}
		if seen[k.Value] {
			f.fail(errs, k, field, "is given twice")
			continue
		}
		seen[k.Value] = true
		f.pos[field] = docPos{line: v.Line, column: v.Column, block: v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		switch {
		case fd.IsMap():
			if v.Kind != yaml.MappingNode {
				f.fail(errs, v, field, "must be a mapping of names to strings, not %s", yamlKind(v))
				continue
			}
			mp := m.Mutable(fd).Map()
			for j := 0; j+1 < len(v.Content); j += 2 {
				mk, mv := v.Content[j], v.Content[j+1]
				sub := field + "." + mk.Value
				f.pos[sub] = docPos{line: mv.Line, column: mv.Column}
				if mp.Has(protoreflect.ValueOfString(mk.Value).MapKey()) {
					f.fail(errs, mk, sub, "is given twice")
					continue
				}
				s, ok := f.stringValue(errs, mv, sub)
				if ok {
					mp.Set(protoreflect.ValueOfString(mk.Value).MapKey(), protoreflect.ValueOfString(s))
				}
			}
		case fd.IsList():
			if v.Kind != yaml.SequenceNode {
				f.fail(errs, v, field, "must be a list, not %s", yamlKind(v))
				continue
			}
			list := m.Mutable(fd).List()
			for j, item := range v.Content {
				sub := fmt.Sprintf("%s[%d]", field, j)
				f.pos[sub] = docPos{line: item.Line, column: item.Column}
				if fd.Kind() == protoreflect.MessageKind {
					elem := list.NewElement()
					f.decodeMessage(errs, item, elem.Message(), sub)
					list.Append(elem)
				} else if s, ok := f.stringValue(errs, item, sub); ok {
					list.Append(protoreflect.ValueOfString(s))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			f.decodeMessage(errs, v, m.Mutable(fd).Message(), field)
		case fd.Kind() == protoreflect.BoolKind:
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				f.fail(errs, v, field, "must be true or false, not %s", yamlKind(v))
				continue
			}
			m.Set(fd, protoreflect.ValueOfBool(v.Value == "true" || v.Value == "True" || v.Value == "TRUE"))
		case fd.Kind() == protoreflect.StringKind:
			if s, ok := f.stringValue(errs, v, field); ok {
				m.Set(fd, protoreflect.ValueOfString(s))
			}
		default:
			f.fail(errs, v, field, "has a type the CLI cannot read (%s)", fd.Kind())
		}
	}
}

func (f *configFile) stringValue(errs *fileErrors, n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		f.fail(errs, n, field, "must be a string, not %s (quote it)", yamlKind(n))
		return "", false
	}
	return n.Value, true
}

func fieldNames(fields protoreflect.FieldDescriptors) string {
	names := make([]string, fields.Len())
	for i := range fields.Len() {
		names[i] = fields.Get(i).JSONName()
	}
	return strings.Join(names, ", ")
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!bool":
		return "a boolean (" + n.Value + ")"
	case "!!int", "!!float":
		return "a number (" + n.Value + ")"
	case "!!null":
		return "null"
	}
	return n.Value
}

// placeholderPattern is a ${VAR} in a setting's value.
var placeholderPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// resolveSecrets replaces the ${VAR} placeholders in the settings of
// sources and destinations with the variables' values (lookup: os.LookupEnv
// in the CLI); an unset variable is an error at its line. Placeholders are
// read in settings only: they are where secrets go, and expressions may
// well contain "${".
func (f *configFile) resolveSecrets(lookup func(string) (string, bool)) error {
	var errs fileErrors
	resolve := func(prefix string, settings map[string]string) {
		for k, v := range settings {
			field := prefix + ".settings." + k
			settings[k] = placeholderPattern.ReplaceAllStringFunc(v, func(ph string) string {
				name := placeholderPattern.FindStringSubmatch(ph)[1]
				val, ok := lookup(name)
				if !ok {
					errs = append(errs, fileError{file: f.name, line: f.pos[field].line, field: field, msg: fmt.Sprintf("environment variable %s is not set", name)})
				}
				return val
			})
		}
	}
	for i, s := range f.doc.GetSources() {
		resolve(fmt.Sprintf("sources[%d]", i), s.GetSettings())
	}
	for i, d := range f.doc.GetDestinations() {
		resolve(fmt.Sprintf("destinations[%d]", i), d.GetSettings())
	}
	slices.SortFunc(errs, func(a, b fileError) int { return a.line - b.line })
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// maskSecrets replaces the settings that are only a placeholder with
// SecretMask, which keeps the target's secret: promote copies a
// configuration, not the secrets of the environment it comes from.
func maskSecrets(doc *harkv1.ConfigDocument) {
	mask := func(settings map[string]string) {
		for k, v := range settings {
			if placeholderPattern.FindString(v) == v && v != "" {
				settings[k] = engine.SecretMask
			}
		}
	}
	for _, s := range doc.GetSources() {
		mask(s.GetSettings())
	}
	for _, d := range doc.GetDestinations() {
		mask(d.GetSettings())
	}
}

// line returns where the field is in the file: the value of the field, or
// of the nearest enclosing field the file gives.
func (f *configFile) line(field string) (docPos, bool) {
	for field != "" {
		if p, ok := f.pos[field]; ok {
			return p, true
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return docPos{}, false
}

// encodeConfig writes a document as YAML: fields in proto order, map keys
// sorted, unset and empty fields left out, except the sections listed in
// sections (written even when empty, so the file manages them), and
// multi-line strings as literal blocks. The same document always gives the
// same bytes.
func encodeConfig(doc *harkv1.ConfigDocument, sections []string) ([]byte, error) {
	n := encodeMessage(doc.ProtoReflect())
	m := doc.ProtoReflect()
	fields := m.Descriptor().Fields()
	// Add the empty sections in their place.
	out := &yaml.Node{Kind: yaml.MappingNode}
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := fd.JSONName()
		if idx := keyIndex(n, name); idx >= 0 {
			out.Content = append(out.Content, n.Content[idx], n.Content[idx+1])
		} else if slices.Contains(sections, name) {
			out.Content = append(out.Content, strNode(name), &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle})
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func keyIndex(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return i
		}
	}
	return -1
}

func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if strings.Contains(s, "\n") {
		n.Style = yaml.LiteralStyle
	}
	return n
}

func encodeMessage(m protoreflect.Message) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		var val *yaml.Node
		switch {
		case fd.IsMap():
			keys := make([]string, 0, v.Map().Len())
			v.Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k.String())
				return true
			})
			slices.Sort(keys)
			val = &yaml.Node{Kind: yaml.MappingNode}
			for _, k := range keys {
				val.Content = append(val.Content, strNode(k), strNode(v.Map().Get(protoreflect.ValueOfString(k).MapKey()).String()))
			}
		case fd.IsList():
			val = &yaml.Node{Kind: yaml.SequenceNode}
			for j := range v.List().Len() {
				if fd.Kind() == protoreflect.MessageKind {
					val.Content = append(val.Content, encodeMessage(v.List().Get(j).Message()))
				} else {
					val.Content = append(val.Content, strNode(v.List().Get(j).String()))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			val = encodeMessage(v.Message())
			if len(val.Content) == 0 {
				continue
			}
		case fd.Kind() == protoreflect.BoolKind:
			val = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(v.Bool())}
		default:
			val = strNode(v.String())
		}
		out.Content = append(out.Content, strNode(fd.JSONName()), val)
	}
	return out
}

// readConfigFile reads and decodes a file, "-" being stdin.
func readConfigFile(path string) (*configFile, error) {
	name := path
	if path == "-" {
		name = "<stdin>"
	}
	data, err := readInput(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return decodeConfig(name, data)
}
