package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	chcompany "github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/chwatch/chwatch/db/dbtest"
	"github.com/chwatch/chwatch/export"
	"github.com/matryer/is"
)

var now = time.Date(2026, 11, 28, 23, 41, 36, 0, time.UTC)

// documented is the README's column list of every kind: changing it breaks
// users' scripts.
var documented = map[export.Kind]string{
	export.Companies: "company_number,company_name,company_status,company_status_detail,company_type,jurisdiction,date_of_creation,date_of_cessation,sic_codes,address_line_1,address_line_2,locality,region,postal_code,country,strike_off_since,missing_from_bulk,deleted_at,source,source_time,updated_at,change_seq,strike_off_kind,gazette_notice_on,dissolution_due_on,strike_off_suspended_at",
	export.StrikeOff: "company_number,company_name,strike_off_since,first_seen,company_type,date_of_creation,sic_codes,address_line_1,address_line_2,locality,region,postal_code,country,source_time,change_seq,strike_off_kind,gazette_notice_on,dissolution_due_on,strike_off_suspended_at",
	export.Officers:  "company_number,company_name,officer_id,name,officer_role,appointed_on,resigned_on,nationality,occupation,country_of_residence,birth_month,birth_year,address_line_1,address_line_2,locality,region,postal_code,country,fetched_at,change_seq",
	export.Changes:   "id,company_number,company_name,change,old_status,old_detail,new_status,new_detail,source,first_seen,timepoint,source_time,detected_at,change_seq",
	export.PSCs:      "company_number,company_name,psc_id,kind,name,natures_of_control,notified_on,ceased_on,nationality,country_of_residence,birth_month,birth_year,address_line_1,address_line_2,locality,region,postal_code,country,fetched_at,change_seq",
}

// company is a row to insert; the zero fields take plain values.
type company struct {
	number, name, status, detail, address1 string
	since, updated                         string // strike_off_since, updated_at
	deleted                                bool
}

// write runs fn in a write transaction with the change sequence, as every
// chwatch writer does.
func write(tb testing.TB, d *db.DB, fn func(tx db.Tx, seq *db.Seq) error) {
	tb.Helper()
	err := d.WriteTx(context.Background(), func(tx db.Tx) error {
		seq, err := db.BeginSeq(context.Background(), tx)
		if err != nil {
			return err
		}
		if err := fn(tx, seq); err != nil {
			return err
		}
		return seq.Save(context.Background(), tx)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

const insertCompany = `INSERT INTO companies (company_number, company_name, company_status, company_status_detail,
	company_type, jurisdiction, date_of_creation, sic_codes, address_line_1, locality, postal_code, country,
	source, source_time, strike_off_since, deleted_at, first_seen_at, updated_at, change_seq)
	VALUES (?, ?, ?, ?, 'ltd', 'england-wales', '2001-02-03', '56290,70229', ?, 'LONDON', 'SW1A 1AA',
	'United Kingdom', 'stream', '2026-11-20T10:00:00Z', ?, ?, '2026-11-20T10:00:01Z', ?, ?)`

func addCompany(tb testing.TB, tx db.Tx, seq *db.Seq, c company) {
	tb.Helper()
	if c.status == "" {
		c.status = "active"
	}
	if c.name == "" {
		c.name = "ACME " + c.number + " LIMITED"
	}
	if c.updated == "" {
		c.updated = "2026-11-20T10:00:01Z"
	}
	var detail, since, deleted any
	if c.detail != "" {
		detail = c.detail
	}
	if c.since != "" {
		since = c.since
	}
	if c.deleted {
		deleted = "2026-11-21T00:00:00Z"
	}
	_, err := tx.Exec(insertCompany, c.number, c.name, c.status, detail, c.address1, since, deleted, c.updated, seq.Next())
	if err == nil {
		_, err = tx.Exec(chcompany.LogInserted, c.number)
	}
	if err != nil {
		tb.Fatalf("insert company %s: %v", c.number, err)
	}
}

func addOfficer(tb testing.TB, tx db.Tx, seq *db.Seq, number, id, name, fetched string) {
	tb.Helper()
	_, err := tx.Exec(`INSERT INTO officers (company_number, officer_id, name, officer_role, appointed_on,
		nationality, occupation, country_of_residence, birth_month, birth_year, address_line_1, locality,
		postal_code, country, fetched_at, change_seq)
		VALUES (?, ?, ?, 'director', '2010-01-01', 'British', 'Director', 'England', 4, 1970,
		'1 Main Street', 'LEEDS', 'LS1 1AA', 'England', ?, ?)`, number, id, name, fetched, seq.Next())
	if err != nil {
		tb.Fatalf("insert officer %s/%s: %v", number, id, err)
	}
}

func addChange(tb testing.TB, tx db.Tx, seq *db.Seq, number, change string, firstSeen int, detected string) {
	tb.Helper()
	_, err := tx.Exec(`INSERT INTO status_changes (company_number, change, old_status, old_detail, new_status,
		new_detail, source, first_seen, timepoint, source_time, detected_at, change_seq)
		VALUES (?, ?, 'active', NULL, 'active', 'active-proposal-to-strike-off', 'stream', ?, 1234, ?, ?, ?)`,
		number, change, firstSeen, detected, detected, seq.Next())
	if err != nil {
		tb.Fatalf("insert status change %s: %v", number, err)
	}
}

const proposal = "active-proposal-to-strike-off"

// tricky is a name that exercises CSV quoting and non-ASCII text.
const tricky = "SMITH, \"JONES\" &\nCÔTÉ — ŁÓDŹ 株式会社 LIMITED"

// seed writes a small database covering every kind.
func seed(tb testing.TB, d *db.DB) {
	write(tb, d, func(tx db.Tx, seq *db.Seq) error {
		addCompany(tb, tx, seq, company{number: "00000001", name: tricky, detail: proposal, since: "2026-11-01T09:00:00Z", address1: "=SUM(1)"})
		addCompany(tb, tx, seq, company{number: "00000002", detail: proposal, since: "2026-11-03T09:00:00Z", address1: "+44 20 7946 0000"})
		addCompany(tb, tx, seq, company{number: "00000003"})                                                                 // active, not in strike-off
		addCompany(tb, tx, seq, company{number: "00000004", detail: proposal, since: "2026-11-02T09:00:00Z", deleted: true}) // deleted
		addCompany(tb, tx, seq, company{number: "00000005", status: "dissolved", detail: proposal, since: "2026-11-02T09:00:00Z"})
		addOfficer(tb, tx, seq, "00000001", "abc", "-DOE, Jane\t", "2026-11-02T00:00:00Z")
		addOfficer(tb, tx, seq, "00000001", "def", "@ROE, \"Richard\"", "2026-11-05T00:00:00Z")
		addOfficer(tb, tx, seq, "00000003", "ghi", "NOT, Shown", "2026-11-05T00:00:00Z")
		addChange(tb, tx, seq, "00000001", "entered_strike_off", 0, "2026-11-01T09:00:05Z")
		addChange(tb, tx, seq, "00000002", "entered_strike_off", 1, "2026-11-03T09:00:05Z")
		addChange(tb, tx, seq, "00000009", "status_changed", 0, "2026-11-04T09:00:05Z") // company unknown: empty name
		return nil
	})
}

// export runs Write and parses its output back.
func export_(tb testing.TB, d *db.DB, kind export.Kind, opt export.Options) ([][]string, export.Result) {
	tb.Helper()
	var buf bytes.Buffer
	res, err := export.Write(context.Background(), d.R, &buf, kind, opt)
	if err != nil {
		tb.Fatalf("export %s: %v", kind, err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		tb.Fatalf("export %s: parse the CSV back: %v\n%s", kind, err, buf.String())
	}
	if int64(len(recs)-1) != res.Rows {
		tb.Fatalf("export %s: %d data rows parsed, Result says %d", kind, len(recs)-1, res.Rows)
	}
	return recs, res
}

// column returns the values of column name, header excluded.
func column(tb testing.TB, recs [][]string, name string) []string {
	tb.Helper()
	for i, h := range recs[0] {
		if h == name {
			var out []string
			for _, r := range recs[1:] {
				out = append(out, r[i])
			}
			return out
		}
	}
	tb.Fatalf("no column %s in %v", name, recs[0])
	return nil
}

func cell(tb testing.TB, recs [][]string, key, name string) string {
	tb.Helper()
	for i, k := range column(tb, recs, recs[0][0]) {
		if k == key {
			return column(tb, recs, name)[i]
		}
	}
	tb.Fatalf("no row %s", key)
	return ""
}

func TestColumnsAsDocumented(t *testing.T) {
	d := dbtest.Open(t)
	seed(t, d)
	for _, k := range export.Kinds {
		t.Run(string(k), func(t *testing.T) {
			is := is.New(t)
			recs, _ := export_(t, d, k, export.Options{})
			is.Equal(strings.Join(recs[0], ","), documented[k])
			is.Equal(export.Columns(k), recs[0])
			for _, r := range recs {
				is.Equal(len(r), len(recs[0]))
			}
		})
	}
}

func TestRows(t *testing.T) {
	d := dbtest.Open(t)
	seed(t, d)

	t.Run("Companies", func(t *testing.T) {
		is := is.New(t)
		recs, _ := export_(t, d, export.Companies, export.Options{})
		is.Equal(column(t, recs, "company_number"), []string{"00000001", "00000002", "00000003", "00000004", "00000005"})
		is.Equal(cell(t, recs, "00000001", "company_name"), tricky) // commas, quotes, newline, non-ASCII
		is.Equal(cell(t, recs, "00000001", "sic_codes"), "56290,70229")
		is.Equal(cell(t, recs, "00000001", "change_seq"), "1")
		is.Equal(cell(t, recs, "00000003", "strike_off_since"), "") // NULL is empty
		is.Equal(cell(t, recs, "00000004", "deleted_at"), "2026-11-21T00:00:00Z")
	})

	t.Run("StrikeOffIsTheSpecDefinitionNewestFirst", func(t *testing.T) {
		is := is.New(t)
		recs, _ := export_(t, d, export.StrikeOff, export.Options{})
		is.Equal(column(t, recs, "company_number"), []string{"00000002", "00000001"})
		is.Equal(column(t, recs, "strike_off_since"), []string{"2026-11-03T09:00:00Z", "2026-11-01T09:00:00Z"})
		is.Equal(column(t, recs, "first_seen"), []string{"1", "0"})
		is.Equal(cell(t, recs, "00000001", "company_name"), tricky)
	})

	t.Run("FirstSeenFromTheLatestEntry", func(t *testing.T) {
		is := is.New(t)
		d := dbtest.Open(t)
		write(t, d, func(tx db.Tx, seq *db.Seq) error {
			addCompany(t, tx, seq, company{number: "00000007", detail: proposal, since: "2026-11-09T00:00:00Z"})
			addCompany(t, tx, seq, company{number: "00000008", detail: proposal, since: "2026-11-09T00:00:00Z"})
			addChange(t, tx, seq, "00000007", "entered_strike_off", 1, "2026-10-01T00:00:00Z")
			addChange(t, tx, seq, "00000007", "left_strike_off", 0, "2026-10-02T00:00:00Z")
			addChange(t, tx, seq, "00000007", "entered_strike_off", 0, "2026-11-09T00:00:00Z")
			return nil
		})
		recs, _ := export_(t, d, export.StrikeOff, export.Options{})
		is.Equal(cell(t, recs, "00000007", "first_seen"), "0") // the latest entry was seen
		is.Equal(cell(t, recs, "00000008", "first_seen"), "0") // no row at all
	})

	t.Run("OfficersOfStrikeOffCompaniesOnly", func(t *testing.T) {
		is := is.New(t)
		recs, _ := export_(t, d, export.Officers, export.Options{Raw: true})
		is.Equal(column(t, recs, "officer_id"), []string{"abc", "def"})
		is.Equal(column(t, recs, "company_name"), []string{tricky, tricky})
		is.Equal(column(t, recs, "name"), []string{"-DOE, Jane\t", "@ROE, \"Richard\""})
		is.Equal(column(t, recs, "birth_year"), []string{"1970", "1970"})
	})

	t.Run("ChangesInIDOrder", func(t *testing.T) {
		is := is.New(t)
		recs, _ := export_(t, d, export.Changes, export.Options{})
		is.Equal(column(t, recs, "id"), []string{"1", "2", "3"})
		is.Equal(column(t, recs, "company_name"), []string{tricky, "ACME 00000002 LIMITED", ""})
		is.Equal(column(t, recs, "change"), []string{"entered_strike_off", "entered_strike_off", "status_changed"})
		is.Equal(column(t, recs, "timepoint"), []string{"1234", "1234", "1234"})
		is.Equal(column(t, recs, "old_detail"), []string{"", "", ""})
	})
}

func TestNeutralise(t *testing.T) {
	d := dbtest.Open(t)
	seed(t, d)
	t.Run("ByDefault", func(t *testing.T) {
		is := is.New(t)
		recs, _ := export_(t, d, export.Companies, export.Options{})
		is.Equal(cell(t, recs, "00000001", "address_line_1"), "'=SUM(1)")
		is.Equal(cell(t, recs, "00000002", "address_line_1"), "'+44 20 7946 0000")
		recs, _ = export_(t, d, export.Officers, export.Options{})
		is.Equal(column(t, recs, "name"), []string{"'-DOE, Jane\t", "'@ROE, \"Richard\""})
	})
	t.Run("Raw", func(t *testing.T) {
		is := is.New(t)
		recs, _ := export_(t, d, export.Companies, export.Options{Raw: true})
		is.Equal(cell(t, recs, "00000001", "address_line_1"), "=SUM(1)")
	})
}

// An officer id is Companies House's base64url key, and may begin with '-':
// it is exported as it is, so a user can join on it, unless it holds
// anything a formula needs.
func TestOfficerIDsAreNotNeutralised(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	write(t, d, func(tx db.Tx, seq *db.Seq) error {
		addCompany(t, tx, seq, company{number: "00000009", detail: proposal, since: "2026-11-09T00:00:00Z"})
		addOfficer(t, tx, seq, "00000009", "-Xy_3kQ9-ab", "DOE, Jane", "2026-11-10T00:00:00Z")
		addOfficer(t, tx, seq, "00000009", "-1+cmd|' /C calc'!A0", "ROE, Richard", "2026-11-10T00:00:00Z")
		return nil
	})
	recs, _ := export_(t, d, export.Officers, export.Options{})
	is.Equal(column(t, recs, "officer_id"), []string{"'-1+cmd|' /C calc'!A0", "-Xy_3kQ9-ab"})
}

func TestSinceIsInclusive(t *testing.T) {
	d := dbtest.Open(t)
	seed(t, d)
	since := func(s string) export.Options {
		t.Helper()
		ts, err := export.ParseSince(s)
		if err != nil {
			t.Fatal(err)
		}
		return export.Options{Since: ts}
	}
	is := is.New(t)
	recs, _ := export_(t, d, export.StrikeOff, since("2026-11-03T09:00:00Z"))
	is.Equal(column(t, recs, "company_number"), []string{"00000002"})
	recs, _ = export_(t, d, export.StrikeOff, since("2026-11-03T10:00:00+01:00")) // same instant
	is.Equal(column(t, recs, "company_number"), []string{"00000002"})
	recs, _ = export_(t, d, export.StrikeOff, since("2026-11-03T09:00:00.5Z")) // after it
	is.Equal(len(recs), 1)
	recs, _ = export_(t, d, export.StrikeOff, since("2026-11-01")) // a date is midnight UTC
	is.Equal(len(recs), 3)
	recs, _ = export_(t, d, export.Officers, since("2026-11-05T00:00:00Z"))
	is.Equal(column(t, recs, "officer_id"), []string{"def"})
	recs, _ = export_(t, d, export.Changes, since("2026-11-03T09:00:05Z"))
	is.Equal(column(t, recs, "id"), []string{"2", "3"})
	recs, _ = export_(t, d, export.Companies, since("2026-11-20T10:00:01Z"))
	is.Equal(len(recs), 6)
	recs, _ = export_(t, d, export.Companies, since("2026-11-20T10:00:02Z"))
	is.Equal(len(recs), 1) // header only

	_, err := export.ParseSince("yesterday")
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "RFC 3339"))
}

func TestIncremental(t *testing.T) {
	is := is.New(t)
	d := dbtest.Open(t)
	seed(t, d)
	recs, res := export_(t, d, export.Companies, export.Options{Incremental: true})
	is.Equal(len(recs), 6)
	is.Equal(res.Mark, int64(11)) // 5 companies, 3 officers, 3 changes
	recs, res2 := export_(t, d, export.Companies, export.Options{Incremental: true, After: res.Mark})
	is.Equal(len(recs), 1)
	is.Equal(res2.Mark, res.Mark)

	write(t, d, func(tx db.Tx, seq *db.Seq) error {
		_, err := tx.Exec("UPDATE companies SET company_name = 'RENAMED', change_seq = ? WHERE company_number = '00000003'", seq.Next())
		addCompany(t, tx, seq, company{number: "00000000"})
		return err
	})
	recs, res3 := export_(t, d, export.Companies, export.Options{Incremental: true, After: res.Mark})
	is.Equal(column(t, recs, "company_number"), []string{"00000003", "00000000"}) // change_seq order
	is.Equal(res3.Mark, int64(13))

	t.Run("MarkAheadOfTheDatabase", func(t *testing.T) {
		is := is.New(t)
		var buf bytes.Buffer
		_, err := export.Write(context.Background(), d.R, &buf, export.Companies, export.Options{Incremental: true, After: 99})
		is.True(errors.Is(err, export.ErrMarkAhead))
		is.Equal(buf.Len(), 0) // nothing written
	})
}

// A writer takes its change_seq before an export's snapshot but commits
// after it. The export must not contain the row, its mark must not cover
// it, and the next export must contain it: nothing is skipped.
func TestLateCommitIsNotSkipped(t *testing.T) {
	for _, k := range []export.Kind{export.Companies, export.StrikeOff, export.Officers, export.Changes} {
		t.Run(string(k), func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			d := dbtest.Open(t)
			seed(t, d)
			_, first := export_(t, d, k, export.Options{Incremental: true})

			// The late writer: BEGIN IMMEDIATE, take a number, write, but do
			// not commit yet.
			tx, err := d.W.BeginTx(ctx, nil)
			is.NoErr(err)
			defer tx.Rollback()
			seq, err := db.BeginSeq(ctx, tx)
			is.NoErr(err)
			switch k {
			case export.Companies, export.StrikeOff:
				addCompany(t, tx, seq, company{number: "LATE0001", detail: proposal, since: "2026-11-28T00:00:00Z"})
			case export.Officers:
				addOfficer(t, tx, seq, "00000002", "late", "LATE, Officer", "2026-11-28T00:00:00Z")
			case export.Changes:
				addChange(t, tx, seq, "00000002", "left_strike_off", 0, "2026-11-28T00:00:00Z")
			}
			is.NoErr(seq.Save(ctx, tx))

			// The export takes its snapshot, then the writer commits, then
			// the export reads its rows.
			committed := false
			var buf bytes.Buffer
			res, err := export.Write(ctx, d.R, &buf, k, export.Options{Incremental: true, After: first.Mark,
				OnSnapshot: func() {
					is.NoErr(tx.Commit()) // the export does not block the writer
					committed = true
				}})
			is.NoErr(err)
			is.True(committed)
			is.Equal(res.Rows, int64(0))   // the snapshot predates the commit
			is.Equal(res.Mark, first.Mark) // and so does the mark
			is.True(!strings.Contains(buf.String(), "LATE"))

			recs, next := export_(t, d, k, export.Options{Incremental: true, After: res.Mark})
			is.Equal(len(recs), 2) // the late row, now
			is.True(strings.Contains(strings.Join(recs[1], ","), "LATE") || strings.Contains(strings.Join(recs[1], ","), "left_strike_off"))
			is.Equal(next.Mark, first.Mark+1)
		})
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.csv")
	writeString := func(s string) func(w io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}

	t.Run("NewFileModeAndContent", func(t *testing.T) {
		is := is.New(t)
		is.NoErr(export.WriteFile(out, export.OutMode, writeString("one\n")))
		b, err := os.ReadFile(out)
		is.NoErr(err)
		is.Equal(string(b), "one\n")
		st, err := os.Stat(out)
		is.NoErr(err)
		is.Equal(st.Mode().Perm(), os.FileMode(0o640))
	})
	t.Run("KeepsTheExistingMode", func(t *testing.T) {
		is := is.New(t)
		is.NoErr(os.Chmod(out, 0o604))
		is.NoErr(export.WriteFile(out, export.OutMode, writeString("two\n")))
		st, err := os.Stat(out)
		is.NoErr(err)
		is.Equal(st.Mode().Perm(), os.FileMode(0o604))
	})
	t.Run("FailureKeepsTheOldFileAndLeavesNoTemporary", func(t *testing.T) {
		is := is.New(t)
		boom := errors.New("boom")
		err := export.WriteFile(out, export.OutMode, func(w io.Writer) error {
			io.WriteString(w, "half")
			return boom
		})
		is.True(errors.Is(err, boom))
		b, _ := os.ReadFile(out)
		is.Equal(string(b), "two\n")
		ents, _ := os.ReadDir(dir)
		is.Equal(len(ents), 1)
	})
	t.Run("MissingDirectory", func(t *testing.T) {
		is := is.New(t)
		err := export.WriteFile(filepath.Join(dir, "nope", "x.csv"), export.OutMode, writeString("x"))
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "does not exist"))
	})
	t.Run("TargetIsADirectory", func(t *testing.T) {
		is := is.New(t)
		err := export.WriteFile(dir, export.OutMode, writeString("x"))
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), "is a directory"))
	})
}

func TestMarks(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")

	t.Run("MissingIsZero", func(t *testing.T) {
		is := is.New(t)
		n, err := export.ReadMark(state)
		is.NoErr(err)
		is.Equal(n, int64(0))
	})
	t.Run("RoundTripMode0600", func(t *testing.T) {
		is := is.New(t)
		is.NoErr(export.WriteMark(state, 42))
		n, err := export.ReadMark(state)
		is.NoErr(err)
		is.Equal(n, int64(42))
		st, err := os.Stat(state)
		is.NoErr(err)
		is.Equal(st.Mode().Perm(), os.FileMode(0o600))
	})
	for _, bad := range []string{"", "abc\n", "-3\n", "12 13\n", "1.5"} {
		t.Run("Corrupt", func(t *testing.T) {
			is := is.New(t)
			p := filepath.Join(dir, "bad")
			is.NoErr(os.WriteFile(p, []byte(bad), 0o600))
			_, err := export.ReadMark(p)
			is.True(errors.Is(err, export.ErrBadState))
			is.True(strings.Contains(err.Error(), p))
		})
	}
}
