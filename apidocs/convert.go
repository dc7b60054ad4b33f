package apidocs

import (
	"bytes"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// yamlToJSON converts a YAML document to indented JSON. It walks the YAML
// node tree instead of decoding into maps, so that object keys keep their
// order and timestamps stay the strings they were written as.
func yamlToJSON(data []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	var compact bytes.Buffer
	if err := writeJSONNode(&compact, &root); err != nil {
		return nil, err
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, compact.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("indent JSON: %w", err)
	}
	indented.WriteByte('\n')
	return indented.Bytes(), nil
}

// writeJSONNode writes node as compact JSON.
func writeJSONNode(buf *bytes.Buffer, node *yaml.Node) error {
	switch node.Kind {
	case yaml.DocumentNode:
		if len(node.Content) != 1 {
			return fmt.Errorf("line %d: expected one YAML document, found %d nodes", node.Line, len(node.Content))
		}
		return writeJSONNode(buf, node.Content[0])
	case yaml.AliasNode:
		return writeJSONNode(buf, node.Alias)
	case yaml.MappingNode:
		return writeJSONObject(buf, node)
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, item := range node.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSONNode(buf, item); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case yaml.ScalarNode:
		return writeJSONScalar(buf, node)
	}
	return fmt.Errorf("line %d: unsupported YAML node kind %d", node.Line, node.Kind)
}

// writeJSONObject writes a mapping node as a JSON object. Keys must be
// scalars, and merge keys (<<) are rejected because JSON has no equivalent.
func writeJSONObject(buf *bytes.Buffer, node *yaml.Node) error {
	buf.WriteByte('{')
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := node.Content[i], node.Content[i+1]
		if key.Kind != yaml.ScalarNode || key.ShortTag() == "!!merge" {
			return fmt.Errorf("line %d: object keys must be plain scalars", key.Line)
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := writeJSONValue(buf, key.Value); err != nil {
			return err
		}
		buf.WriteByte(':')
		if err := writeJSONNode(buf, value); err != nil {
			return err
		}
	}
	buf.WriteByte('}')
	return nil
}

// writeJSONScalar writes a scalar with the JSON type of its resolved YAML
// tag. Timestamps and binary values are written as their source text.
func writeJSONScalar(buf *bytes.Buffer, node *yaml.Node) error {
	switch tag := node.ShortTag(); tag {
	case "!!str", "!!timestamp", "!!binary":
		return writeJSONValue(buf, node.Value)
	case "!!null":
		buf.WriteString("null")
		return nil
	case "!!bool", "!!int", "!!float":
		var value any
		if err := node.Decode(&value); err != nil {
			return fmt.Errorf("line %d: decode %s %q: %w", node.Line, tag, node.Value, err)
		}
		if err := writeJSONValue(buf, value); err != nil {
			return fmt.Errorf("line %d: %w", node.Line, err)
		}
		return nil
	default:
		return fmt.Errorf("line %d: unsupported YAML tag %s", node.Line, tag)
	}
}

func writeJSONValue(buf *bytes.Buffer, value any) error {
	encoded, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("encode %v as JSON: %w", value, err)
	}
	buf.Write(encoded)
	return nil
}
