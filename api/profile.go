package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/chwatch/chwatch/company"
)

// Profile is the answer of GET /company/{number}.
type Profile struct {
	// Version is the profile as company.ParseProfile reads the stream's
	// data, from source api, with SourceTime the answer's Date (the local
	// clock only when the answer has none). When Found is false it is
	// company.DeletedVersion: the rule sets deleted_at and a company in
	// strike-off leaves it.
	Version company.Version
	// Found is false when Companies House answered 404
	// company-profile-not-found: a result, not a failure.
	Found bool
	Date  time.Time // the answer's Date
}

// Profile fetches a company's profile.
func (c *Client) Profile(ctx context.Context, number string) (Profile, error) {
	op := "get profile " + printable(number, 40)
	if err := checkNumber(op, number); err != nil {
		return Profile{}, err
	}
	a, err := c.get(ctx, op, "/company/"+number)
	if err != nil {
		return Profile{}, err
	}
	switch a.status {
	case http.StatusOK:
		v, err := company.ParseProfile(a.body, company.API, a.date)
		if err != nil {
			return Profile{}, &Error{Kind: ErrBadResponse, Op: op, Status: a.status, Detail: err.Error(), Err: err}
		}
		if v.Number != number {
			return Profile{}, &Error{Kind: ErrBadResponse, Op: op, Status: a.status, Detail: fmt.Sprintf("the answer is about company %q", printable(v.Number, 40))}
		}
		return Profile{Version: v, Found: true, Date: a.date}, nil
	case http.StatusNotFound:
		if profileNotFound(a.body) {
			return Profile{Version: company.DeletedVersion(number, company.API, a.date), Date: a.date}, nil
		}
		e := c.refused(op, a)
		e.Detail = "404 without company-profile-not-found (is api.url right?): " + e.Detail
		return Profile{}, e
	}
	return Profile{}, c.refused(op, a)
}

// profileNotFound recognises Companies House's own 404 for an unknown
// company, so that a 404 from anything else (a wrong api.url) is never
// taken for a deleted company.
func profileNotFound(body []byte) bool {
	var e struct {
		Errors []struct {
			Error string `json:"error"`
		} `json:"errors"`
	}
	if json.Unmarshal(bytes.TrimSpace(body), &e) != nil {
		return false
	}
	for _, x := range e.Errors {
		if x.Error == "company-profile-not-found" {
			return true
		}
	}
	return false
}
