package company

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/feed"
)

// Officer is one appointment at a company, as an item of GET
// /company/{n}/officers describes it. Only Raw is complete: the fields are
// what the officers table has columns for.
type Officer struct {
	// ID is the appointment id, the last segment of links.self
	// (/company/{n}/appointments/{id}); the same person holding two roles
	// is two appointments. An item without links.self gets "sha256:" and
	// a digest of its JSON, so it is still kept, once.
	ID                 string
	Name               string
	Role               string
	AppointedOn        string
	ResignedOn         string // as published: "" does not mean serving (a dissolved company's former officers often have none)
	Nationality        string
	Occupation         string
	CountryOfResidence string
	BirthMonth         int // 0 when not published
	BirthYear          int
	AddressLine1       string // premises and first line
	AddressLine2       string
	Locality           string
	Region             string
	PostalCode         string
	Country            string
	// Raw is the item exactly as the API sent it.
	Raw []byte
}

// ParseOfficer reads one officer item. It is lenient on purpose: Companies
// House adds fields and roles without notice, so unknown members are
// ignored, and a known member of an unexpected type is left empty rather
// than failing the list (Raw still holds it). Only an item that is not a
// JSON object is an error.
func ParseOfficer(raw []byte) (Officer, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Officer{}, fmt.Errorf("decode officer item: not a JSON object")
	}
	o := Officer{
		Name: jsonString(m["name"]), Role: jsonString(m["officer_role"]),
		AppointedOn: jsonString(m["appointed_on"]), ResignedOn: jsonString(m["resigned_on"]),
		Nationality: jsonString(m["nationality"]), Occupation: jsonString(m["occupation"]),
		CountryOfResidence: jsonString(m["country_of_residence"]),
		Raw:                bytes.Clone(raw),
	}
	var dob map[string]json.RawMessage
	if json.Unmarshal(m["date_of_birth"], &dob) == nil {
		o.BirthMonth, o.BirthYear = jsonInt(dob["month"]), jsonInt(dob["year"])
	}
	var addr map[string]json.RawMessage
	if json.Unmarshal(m["address"], &addr) == nil {
		o.AddressLine1 = jsonString(addr["address_line_1"])
		if prem := jsonString(addr["premises"]); prem != "" && !startsWithWord(o.AddressLine1, prem) {
			o.AddressLine1 = strings.TrimSpace(prem + " " + o.AddressLine1)
		}
		o.AddressLine2, o.Locality, o.Region = jsonString(addr["address_line_2"]), jsonString(addr["locality"]), jsonString(addr["region"])
		o.PostalCode, o.Country = jsonString(addr["postal_code"]), jsonString(addr["country"])
	}
	var links map[string]json.RawMessage
	if json.Unmarshal(m["links"], &links) == nil {
		self := jsonString(links["self"])
		if i := strings.LastIndex(self, "/appointments/"); i >= 0 {
			o.ID = self[i+len("/appointments/"):]
		} else {
			o.ID = self
		}
	}
	if o.ID == "" {
		sum := sha256.Sum256(raw)
		o.ID = "sha256:" + hex.EncodeToString(sum[:10])
	}
	return o, nil
}

func jsonString(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// jsonInt reads a number, or a string holding one ("1970"), as some
// Companies House fields are written both ways.
func jsonInt(v json.RawMessage) int {
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		i, _ := strconv.Atoi(n.String())
		return i
	}
	i, _ := strconv.Atoi(jsonString(v))
	return i
}

// OfficersResult says what ReplaceOfficersTx did.
type OfficersResult struct {
	// Written is false when the company is not in strike-off (it left while
	// the list was being fetched, or was never stored): nothing was written.
	Written bool
	Stored  int   // officer rows written
	Removed int64 // rows deleted because the new list no longer has them
}

// officersTable is where ReplaceOfficersTx writes, its columns in the
// order of its row values.
var officersTable = newListTable("officers",
	"DELETE FROM officers WHERE company_number = ? AND officer_id NOT IN (SELECT value FROM json_each(?))",
	"INSERT INTO officers", "officer_id",
	"company_number", "officer_id", "name", "officer_role", "appointed_on", "resigned_on", "nationality", "occupation",
	"country_of_residence", "birth_month", "birth_year", "address_line_1", "address_line_2", "locality", "region",
	"postal_code", "country", "raw", "fetched_at", "change_seq")

// ReplaceOfficersTx makes officers the whole list of company number's
// officers, inside the caller's write transaction: rows the list no longer
// has are deleted, every row of the list is written with fetchedAt and its
// own change_seq from seq (the caller saves seq). Whether the company is
// still in strike-off is checked in the same transaction: a list that
// arrives after the company left (or for a company chwatch does not hold)
// writes nothing, so a late result cannot resurrect officers that leaving
// deleted. Items with the same ID are written once, the first kept. While
// a feed sink is configured, the replacement is also a message of the
// change feed, written in tx (feed.OfficersTx).
func ReplaceOfficersTx(ctx context.Context, tx db.Querier, seq *db.Seq, number string, officers []Officer, fetchedAt time.Time) (OfficersResult, error) {
	ts := db.FormatTime(fetchedAt)
	r, err := replaceListTx(ctx, tx, officersTable, number, officers, func(o Officer) string { return o.ID },
		func(args []any, o Officer) []any {
			return append(args, number, o.ID, o.Name, db.NullString(o.Role), db.NullString(o.AppointedOn), db.NullString(o.ResignedOn),
				db.NullString(o.Nationality), db.NullString(o.Occupation), db.NullString(o.CountryOfResidence), db.NullInt(int64(o.BirthMonth)),
				db.NullInt(int64(o.BirthYear)), db.NullString(o.AddressLine1), db.NullString(o.AddressLine2), db.NullString(o.Locality), db.NullString(o.Region),
				db.NullString(o.PostalCode), db.NullString(o.Country), db.NullString(string(o.Raw)), ts, seq.Next())
		})
	if err != nil || !r.written {
		return OfficersResult{}, err
	}
	// The change feed's message commits with the rows, or not at all.
	if err := feed.OfficersTx(ctx, tx, number, fetchedAt); err != nil {
		return OfficersResult{}, fmt.Errorf("replace officers of %s: %w", number, err)
	}
	return OfficersResult{Written: true, Stored: r.kept, Removed: r.removed}, nil
}

// inStrikeOffTx reads whether company number is in strike-off inside the
// caller's transaction (false when chwatch does not hold it): a list that
// arrives after the company left must write nothing.
func inStrikeOffTx(ctx context.Context, tx db.Querier, number string) (bool, error) {
	var (
		status          string
		detail, deleted sql.NullString
	)
	err := tx.QueryRowContext(ctx, "SELECT company_status, company_status_detail, deleted_at FROM companies WHERE company_number = ?", number).
		Scan(&status, &detail, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read company: %w", err)
	}
	return InStrikeOff(status, detail.String, deleted.Valid), nil
}

// DeletedVersion is the version a source reports when the company no longer
// exists: a stream `deleted` event, or the REST API's 404
// company-profile-not-found. Applied through the rule it sets deleted_at,
// and a company in strike-off leaves it.
func DeletedVersion(number string, src Source, t time.Time) Version {
	return Version{Number: number, Deleted: true, Source: src, SourceTime: t.UTC()}
}
