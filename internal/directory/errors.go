package directory

import "errors"

// ErrLineExists and ErrNoLine are the conflicts of a line added or
// changed while running (internal/app PutLine, RemoveLine), which the API
// answers 409 and 404.
var (
	ErrLineExists = errors.New("line exists")
	ErrNoLine     = errors.New("no such line")
)
