package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// SocketEnv names the environment variable that points clients at a socket.
const SocketEnv = "OCM_AGENT_SOCKET"

// ErrNotRunning means nothing answers on the control socket.
var ErrNotRunning = errors.New("the ocm-agent daemon is not running")

// Client talks to a daemon's control socket.
type Client struct {
	path string
	hc   *http.Client
	// stream has no overall timeout, for the event feed.
	stream *http.Client
}

// NewClient returns a client of the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns: 2,
	}
	return &Client{path: path, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, stream: &http.Client{Transport: tr}}
}

// Path is the socket the client uses.
func (c *Client) Path() string { return c.path }

// APIError is a non-2xx answer.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Is maps API statuses onto the package's error kinds.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrInvalid:
		return e.Status == http.StatusBadRequest
	}
	return false
}

// Do sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://ocm-agent"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if err != nil {
			return fmt.Errorf("reading the daemon's answer: %w", err)
		}
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Message == "" {
			eb.Message = fmt.Sprintf("the daemon answered %s", resp.Status)
		}
		return &APIError{Status: resp.StatusCode, Message: eb.Message}
	}
	if out == nil {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	// Decoded as it arrives, whatever its size: a list of tens of
	// thousands of shares is a large answer, and the daemon (this user's,
	// over a private socket) is trusted.
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if errors.As(err, &se) || errors.As(err, &te) {
			return fmt.Errorf("the daemon's answer is not what this client expects (version mismatch?): %w", err)
		}
		return fmt.Errorf("reading the daemon's answer: %w", err)
	}
	return nil
}

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 1 << 20

func (c *Client) dialError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		if _, serr := os.Stat(c.path); serr != nil {
			return fmt.Errorf("%w (no socket at %s; start it with 'ocm-agent serve' or 'systemctl --user start ocm-agent')", ErrNotRunning, c.path)
		}
		return fmt.Errorf("%w (socket %s does not answer)", ErrNotRunning, c.path)
	}
	return err
}

// Status fetches the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.Do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Shares lists the live shares, or all of them.
func (c *Client) Shares(ctx context.Context, all bool) ([]Share, error) {
	var l []Share
	return l, c.Do(ctx, http.MethodGet, "/v1/shares?all="+strconv.FormatBool(all), nil, &l)
}

// Share fetches one share.
func (c *Client) Share(ctx context.Context, id string) (Share, error) {
	var s Share
	return s, c.Do(ctx, http.MethodGet, "/v1/shares/"+url.PathEscape(id), nil, &s)
}

// ShareAction runs accept, decline or remove on a share.
func (c *Client) ShareAction(ctx context.Context, id, action string) (Share, error) {
	var s Share
	return s, c.Do(ctx, http.MethodPost, "/v1/shares/"+url.PathEscape(id)+"/"+action, nil, &s)
}

// Invites lists the invites the user made, in every state.
func (c *Client) Invites(ctx context.Context) ([]Invite, error) {
	var l []Invite
	return l, c.Do(ctx, http.MethodGet, "/v1/invites", nil, &l)
}

// CreateInvite makes an invite.
func (c *Client) CreateInvite(ctx context.Context, req InviteRequest) (CreatedInvite, error) {
	var ci CreatedInvite
	return ci, c.Do(ctx, http.MethodPost, "/v1/invites", req, &ci)
}

// RevokeInvite withdraws an invite nobody has accepted.
func (c *Client) RevokeInvite(ctx context.Context, id string) (Invite, error) {
	var inv Invite
	return inv, c.Do(ctx, http.MethodDelete, "/v1/invites/"+url.PathEscape(id), nil, &inv)
}

// AcceptInvite accepts someone's invite and returns the new contact.
func (c *Client) AcceptInvite(ctx context.Context, req AcceptInviteRequest) (Contact, error) {
	var ct Contact
	return ct, c.Do(ctx, http.MethodPost, "/v1/invites/accept", req, &ct)
}

// Contacts lists the address book.
func (c *Client) Contacts(ctx context.Context) ([]Contact, error) {
	var l []Contact
	return l, c.Do(ctx, http.MethodGet, "/v1/contacts", nil, &l)
}

// RemoveContact removes a contact and returns it.
func (c *Client) RemoveContact(ctx context.Context, id string) (Contact, error) {
	var ct Contact
	return ct, c.Do(ctx, http.MethodDelete, "/v1/contacts/"+url.PathEscape(id), nil, &ct)
}

// Events streams the change feed from after until ctx ends, calling fn
// for each event. It returns when the stream ends or fails.
func (c *Client) Events(ctx context.Context, after uint64, fn func(Event)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://ocm-agent/v1/events?after="+strconv.FormatUint(after, 10), nil)
	if err != nil {
		return err
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &APIError{Status: resp.StatusCode, Message: "event stream refused: " + resp.Status}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ev Event
			if json.Unmarshal([]byte(data), &ev) == nil {
				fn(ev)
			}
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return ctx.Err()
}
