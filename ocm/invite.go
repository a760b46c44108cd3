package ocm

// InviteAccepted is the POST /invite-accepted body.
type InviteAccepted struct {
	RecipientProvider string `json:"recipientProvider"`
	Token             string `json:"token"`
	UserID            string `json:"userID"`
	Email             string `json:"email"`
	Name              string `json:"name"`
}

// String keeps the invite token out of logs.
func (i InviteAccepted) String() string {
	return "invite acceptance from " + i.UserID + "@" + i.RecipientProvider
}

// InviteAcceptedResponse is the 200 answer to an invite acceptance.
type InviteAcceptedResponse struct {
	UserID string `json:"userID"`
	Email  string `json:"email"`
	Name   string `json:"name"`
}

// TokenResponse is the answer of a token endpoint (both contracts).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// String keeps tokens out of logs and errors.
func (t TokenResponse) String() string {
	return "token response (" + t.TokenType + ")"
}

// TokenError is the OAuth error body of a token endpoint.
type TokenError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// ParseInviteAccepted decodes and validates an invite acceptance.
func ParseInviteAccepted(body []byte) (*InviteAccepted, error) {
	m, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	var errs ValidationErrors
	f := fields{m: m, errs: &errs}
	inv := &InviteAccepted{
		RecipientProvider: f.str("recipientProvider", 256),
		Token:             f.str("token", 512),
		UserID:            f.id("userID"),
		Email:             f.str("email", 320),
		Name:              f.str("name", maxNameLen),
	}
	for _, k := range []struct{ name, v string }{{"recipientProvider", inv.RecipientProvider}, {"token", inv.Token}, {"userID", inv.UserID}} {
		if k.v == "" && !hasErr(errs, k.name) {
			errs.Add(k.name, "is required")
		}
	}
	if inv.RecipientProvider != "" {
		h, err := NormalizeHost(inv.RecipientProvider)
		if err != nil {
			errs.Add("recipientProvider", err.Error())
		}
		inv.RecipientProvider = h
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return inv, nil
}
