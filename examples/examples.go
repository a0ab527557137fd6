// Package examples holds the sample files of the README and the schema they assume.
// The schema is embedded so that cdpemu serves it when no --schema is given.
package examples

import _ "embed"

// SchemaJSON is the profiles schema the example files assume: the data object of
// GET /metadata/objects/profiles.
//
//go:embed schema.json
var SchemaJSON []byte
