package ocm

// Error is the OCM error body: {"message": "...", "validationErrors": [...]}.
type Error struct {
	Message          string            `json:"message"`
	ValidationErrors []ValidationError `json:"validationErrors,omitempty"`
}

// ValidationError names one bad field of a request and what is wrong with it.
type ValidationError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

// ValidationErrors collects the problems of one request; it is an error
// when it is not empty.
type ValidationErrors []ValidationError

func (v ValidationErrors) Error() string {
	if len(v) == 0 {
		return "no validation errors"
	}
	s := "invalid request: " + v[0].Name + ": " + v[0].Message
	if len(v) > 1 {
		s += " (and more)"
	}
	return s
}

// Add appends one problem.
func (v *ValidationErrors) Add(name, message string) {
	*v = append(*v, ValidationError{Name: name, Message: message})
}

// Err returns v as an error, or nil when it is empty.
func (v ValidationErrors) Err() error {
	if len(v) == 0 {
		return nil
	}
	return v
}
