package company

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/chwatch/chwatch/db"
)

// CounterPSCs is the running total of pscs rows, kept in the transactions
// that write and delete them, so status never counts the table.
const CounterPSCs = "pscs"

// PSC is one person with significant control of a company, as an item of
// GET /company/{n}/persons-with-significant-control describes it. Only Raw
// is complete: the fields are what the pscs table has columns for.
type PSC struct {
	// ID is the last segment of links.self
	// (/company/{n}/persons-with-significant-control/individual/{id}). An
	// item without links.self gets "sha256:" and a digest of its JSON, so
	// it is still kept, once.
	ID                 string
	Kind               string // individual-person-with-significant-control, corporate-entity-..., an open set
	Name               string // "" for a super-secure PSC
	NaturesOfControl   []string
	NotifiedOn         string
	CeasedOn           string // "" while the control lasts
	Nationality        string
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

// ParsePSC reads one PSC item, as leniently as ParseOfficer: unknown
// members are ignored, a known member of an unexpected type is left empty
// (Raw still holds it), and only an item that is not a JSON object is an
// error.
func ParsePSC(raw []byte) (PSC, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return PSC{}, fmt.Errorf("decode PSC item: not a JSON object")
	}
	p := PSC{
		Kind: jsonString(m["kind"]), Name: jsonString(m["name"]),
		NotifiedOn: jsonString(m["notified_on"]), CeasedOn: jsonString(m["ceased_on"]),
		Nationality: jsonString(m["nationality"]), CountryOfResidence: jsonString(m["country_of_residence"]),
		Raw: bytes.Clone(raw),
	}
	var natures []json.RawMessage
	if json.Unmarshal(m["natures_of_control"], &natures) == nil {
		for _, n := range natures {
			if s := jsonString(n); s != "" {
				p.NaturesOfControl = append(p.NaturesOfControl, s)
			}
		}
	}
	var dob map[string]json.RawMessage
	if json.Unmarshal(m["date_of_birth"], &dob) == nil {
		p.BirthMonth, p.BirthYear = jsonInt(dob["month"]), jsonInt(dob["year"])
	}
	var addr map[string]json.RawMessage
	if json.Unmarshal(m["address"], &addr) == nil {
		p.AddressLine1 = jsonString(addr["address_line_1"])
		if prem := jsonString(addr["premises"]); prem != "" && !startsWithWord(p.AddressLine1, prem) {
			p.AddressLine1 = strings.TrimSpace(prem + " " + p.AddressLine1)
		}
		p.AddressLine2, p.Locality, p.Region = jsonString(addr["address_line_2"]), jsonString(addr["locality"]), jsonString(addr["region"])
		p.PostalCode, p.Country = jsonString(addr["postal_code"]), jsonString(addr["country"])
	}
	var links map[string]json.RawMessage
	if json.Unmarshal(m["links"], &links) == nil {
		self := strings.TrimRight(jsonString(links["self"]), "/")
		p.ID = self[strings.LastIndexByte(self, '/')+1:]
	}
	if p.ID == "" {
		sum := sha256.Sum256(raw)
		p.ID = "sha256:" + hex.EncodeToString(sum[:10])
	}
	return p, nil
}

// PSCsResult says what ReplacePSCsTx did.
type PSCsResult struct {
	// Written is false when the company is not in strike-off (it left
	// while the list was being fetched, or was never stored): nothing was
	// written.
	Written bool
	Stored  int   // PSC rows written
	Removed int64 // rows deleted because the new list no longer has them
}

// pscsTable is where ReplacePSCsTx writes, its columns in the order of
// its row values.
var pscsTable = newListTable("PSCs",
	"DELETE FROM pscs WHERE company_number = ? AND psc_id NOT IN (SELECT value FROM json_each(?))",
	"INSERT INTO pscs", "psc_id",
	"company_number", "psc_id", "kind", "name", "natures_of_control", "notified_on", "ceased_on", "nationality",
	"country_of_residence", "birth_month", "birth_year", "address_line_1", "address_line_2", "locality", "region",
	"postal_code", "country", "raw", "fetched_at", "change_seq")

// ReplacePSCsTx makes pscs the whole list of company number's persons with
// significant control, inside the caller's write transaction, as
// ReplaceOfficersTx does for officers: rows the list no longer has are
// deleted, every row of the list is written with fetchedAt and its own
// change_seq from seq (the caller saves seq), nothing is written when the
// company is not in strike-off (checked in the same transaction, so a late
// list cannot resurrect rows that leaving deleted), and items with the same
// ID are written once, the first kept. The 'pscs' counter moves by the
// rows gained or lost.
func ReplacePSCsTx(ctx context.Context, tx db.Querier, seq *db.Seq, number string, pscs []PSC, fetchedAt time.Time) (PSCsResult, error) {
	var before int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM pscs WHERE company_number = ?", number).Scan(&before); err != nil {
		return PSCsResult{}, fmt.Errorf("replace PSCs of %s: count old rows: %w", number, err)
	}
	ts := db.FormatTime(fetchedAt)
	r, err := replaceListTx(ctx, tx, pscsTable, number, pscs, func(p PSC) string { return p.ID },
		func(args []any, p PSC) []any {
			return append(args, number, p.ID, db.NullString(p.Kind), db.NullString(p.Name), db.NullString(strings.Join(p.NaturesOfControl, ",")),
				db.NullString(p.NotifiedOn), db.NullString(p.CeasedOn), db.NullString(p.Nationality), db.NullString(p.CountryOfResidence),
				db.NullInt(int64(p.BirthMonth)), db.NullInt(int64(p.BirthYear)), db.NullString(p.AddressLine1), db.NullString(p.AddressLine2),
				db.NullString(p.Locality), db.NullString(p.Region), db.NullString(p.PostalCode), db.NullString(p.Country),
				db.NullString(string(p.Raw)), ts, seq.Next())
		})
	if err != nil || !r.written {
		return PSCsResult{}, err
	}
	seq.Count(CounterPSCs, int64(r.kept)-before)
	return PSCsResult{Written: true, Stored: r.kept, Removed: r.removed}, nil
}

// deletePSCsTx deletes company number's PSCs (it left strike-off) and
// moves the counter with them.
func deletePSCsTx(ctx context.Context, tx db.Querier, number string) error {
	res, err := tx.ExecContext(ctx, "DELETE FROM pscs WHERE company_number = ?", number)
	if err != nil {
		return fmt.Errorf("delete PSCs of %s: %w", number, err)
	}
	n, _ := res.RowsAffected()
	return db.AddCounter(ctx, tx, CounterPSCs, -n)
}

// WithoutPSCsSQL selects the companies in strike-off that have no PSC rows:
// the companies the pscs backfill queues when enrich.pscs is turned on
// (queue.EnqueueSelectTx runs it).
const WithoutPSCsSQL = `SELECT c.company_number FROM strike_off_companies c
	WHERE NOT EXISTS (SELECT 1 FROM pscs p WHERE p.company_number = c.company_number)`
