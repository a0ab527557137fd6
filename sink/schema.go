package sink

import (
	"encoding/json"
	"fmt"
)

// Field types of the profiles schema.
const (
	TypeString   = "string"
	TypeInteger  = "integer"
	TypeNumber   = "number"
	TypeBoolean  = "boolean"
	TypeDatetime = "datetime" // RFC 3339 with a zone offset or Z
	TypeDate     = "date"     // YYYY-MM-DD
)

// Schema is the profiles object's schema: the data object of
// GET /metadata/objects/profiles.
type Schema struct {
	ObjectName   string        `json:"objectName" yaml:"objectName"`
	PrimaryKey   string        `json:"primaryKey" yaml:"primaryKey"`
	IdentityKeys []string      `json:"identityKeys" yaml:"identityKeys"`
	Fields       []SchemaField `json:"fields" yaml:"fields"`
}

// SchemaField is one field of the schema.
type SchemaField struct {
	Name string `json:"name" yaml:"name"`
	Type string `json:"type" yaml:"type"`
}

// FieldType returns the type of the named field and whether the schema has it.
func (s *Schema) FieldType(name string) (string, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f.Type, true
		}
	}
	return "", false
}

// IsIdentityKey reports whether name is one of the schema's identity keys.
func (s *Schema) IsIdentityKey(name string) bool {
	for _, k := range s.IdentityKeys {
		if k == name {
			return true
		}
	}
	return false
}

// Validate checks that the schema is usable: known field types, and a primary key
// and identity keys that are fields of the schema.
func (s *Schema) Validate() error {
	if len(s.Fields) == 0 {
		return fmt.Errorf("schema has no fields")
	}
	seen := make(map[string]bool, len(s.Fields))
	for _, f := range s.Fields {
		switch f.Type {
		case TypeString, TypeInteger, TypeNumber, TypeBoolean, TypeDatetime, TypeDate:
		default:
			return fmt.Errorf("schema field %q has unknown type %q", f.Name, f.Type)
		}
		if seen[f.Name] {
			return fmt.Errorf("schema field %q appears twice", f.Name)
		}
		seen[f.Name] = true
	}
	for _, k := range append([]string{s.PrimaryKey}, s.IdentityKeys...) {
		if k != "" && !seen[k] {
			return fmt.Errorf("schema key %q is not a field of the schema", k)
		}
	}
	return nil
}

// ParseSchema decodes a schema from its JSON form and validates it.
func ParseSchema(data []byte) (Schema, error) {
	var s Schema
	if err := json.Unmarshal(data, &s); err != nil {
		return Schema{}, fmt.Errorf("schema: %w", err)
	}
	if err := s.Validate(); err != nil {
		return Schema{}, fmt.Errorf("schema: %w", err)
	}
	return s, nil
}
