package company

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// profile is the company profile resource: the stream's `data` and the body
// of REST GET /company/{n}. Unknown fields are ignored: enums and fields are
// open.
type profile struct {
	CompanyName     string   `json:"company_name"`
	CompanyNumber   string   `json:"company_number"`
	CompanyStatus   string   `json:"company_status"`
	StatusDetail    string   `json:"company_status_detail"`
	Type            string   `json:"type"`
	Jurisdiction    string   `json:"jurisdiction"`
	DateOfCreation  string   `json:"date_of_creation"`
	DateOfCessation string   `json:"date_of_cessation"`
	SICCodes        []string `json:"sic_codes"`
	Etag            string   `json:"etag"`
	Address         struct {
		Premises     string `json:"premises"`
		AddressLine1 string `json:"address_line_1"`
		AddressLine2 string `json:"address_line_2"`
		Locality     string `json:"locality"`
		Region       string `json:"region"`
		PostalCode   string `json:"postal_code"`
		Country      string `json:"country"`
	} `json:"registered_office_address"`
}

// ParseProfile decodes a company profile into a Version from src at t.
// A profile without company_number or company_status is an error: the
// caller records the event as invalid.
func ParseProfile(data []byte, src Source, t time.Time) (Version, error) {
	var p profile
	if err := json.Unmarshal(data, &p); err != nil {
		return Version{}, fmt.Errorf("decode company profile: %w", err)
	}
	if p.CompanyNumber == "" {
		return Version{}, fmt.Errorf("company profile has no company_number")
	}
	if p.CompanyStatus == "" {
		return Version{}, fmt.Errorf("company profile %s has no company_status", p.CompanyNumber)
	}
	line1 := p.Address.AddressLine1
	if prem := p.Address.Premises; prem != "" && !startsWithWord(line1, prem) {
		line1 = strings.TrimSpace(prem + " " + line1)
	}
	return Version{
		Number: p.CompanyNumber, Name: p.CompanyName, Status: p.CompanyStatus, Detail: p.StatusDetail,
		Type: p.Type, Jurisdiction: p.Jurisdiction, DateOfCreation: p.DateOfCreation, DateOfCessation: p.DateOfCessation,
		SICCodes: p.SICCodes, AddressLine1: line1, AddressLine2: p.Address.AddressLine2, Locality: p.Address.Locality,
		Region: p.Address.Region, PostalCode: p.Address.PostalCode, Country: p.Address.Country,
		Etag: p.Etag, Source: src, SourceTime: t.UTC(),
	}, nil
}

// startsWithWord reports whether line begins with word as a whole word
// ("10 Downing Street" begins with "10", "12 High Street" not with "1").
func startsWithWord(line, word string) bool {
	rest, ok := strings.CutPrefix(line, word)
	return ok && (rest == "" || strings.IndexAny(rest[:1], " ,") == 0)
}
