package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chwatch/chwatch/company"
	"github.com/chwatch/chwatch/db"
	"github.com/matryer/is"
)

// exportDB is a migrated database in a temporary directory with two
// companies in strike-off (one with a tricky name and a formula-like
// address), one not, an officer and a status change.
func exportDB(t *testing.T) (*db.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chwatch.db")
	d, err := db.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.MigrateUp(context.Background(), time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	err = d.WriteTx(context.Background(), func(tx db.Tx) error {
		seq, err := db.BeginSeq(context.Background(), tx)
		if err != nil {
			return err
		}
		exportAddCompany(t, tx, seq, "00000001", exportTricky, "active-proposal-to-strike-off", "2026-11-01T09:00:00Z")
		exportAddCompany(t, tx, seq, "00000002", "PLAIN LIMITED", "active-proposal-to-strike-off", "2026-11-02T09:00:00Z")
		exportAddCompany(t, tx, seq, "00000003", "ACTIVE LIMITED", "", "")
		if _, err := tx.Exec(`INSERT INTO officers (company_number, officer_id, name, fetched_at, change_seq)
			VALUES ('00000001', 'x1', '=HYPERLINK("http://evil")', '2026-11-02T00:00:00Z', ?)`, seq.Next()); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO status_changes (company_number, change, new_status, new_detail, source,
			first_seen, source_time, detected_at, change_seq)
			VALUES ('00000001', 'entered_strike_off', 'active', 'active-proposal-to-strike-off', 'stream', 0,
			'2026-11-01T09:00:00Z', '2026-11-01T09:00:01Z', ?)`, seq.Next()); err != nil {
			return err
		}
		return seq.Save(context.Background(), tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, path
}

const exportTricky = "SMITH, \"JONES\" &\nCÔTÉ 株式会社 LIMITED"

func exportAddCompany(t *testing.T, tx db.Tx, seq *db.Seq, number, name, detail, since string) {
	t.Helper()
	var d, s any
	if detail != "" {
		d, s = detail, since
	}
	_, err := tx.Exec(`INSERT INTO companies (company_number, company_name, company_status, company_status_detail,
		address_line_1, source, source_time, strike_off_since, first_seen_at, updated_at, change_seq)
		VALUES (?, ?, 'active', ?, '@risky', 'stream', '2026-11-01T09:00:00Z', ?, '2026-11-01T09:00:00Z',
		'2026-11-01T09:00:00Z', ?)`, number, name, d, s, seq.Next())
	if err == nil {
		_, err = tx.Exec(company.LogInserted, number)
	}
	if err != nil {
		t.Fatalf("insert company %s: %v", number, err)
	}
}

// exportRun runs chwatch with args and returns the exit code, stdout and
// stderr.
func exportRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb}
	code := e.run(context.Background(), append([]string{"chwatch"}, args...))
	return code, out.String(), errb.String()
}

func exportParse(t *testing.T, s string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		t.Fatalf("parse the CSV back: %v\n%s", err, s)
	}
	return recs
}

func TestExportKinds(t *testing.T) {
	_, path := exportDB(t)
	want := map[string]string{
		"companies":  "company_number,company_name,company_status,company_status_detail,company_type,jurisdiction,date_of_creation,date_of_cessation,sic_codes,address_line_1,address_line_2,locality,region,postal_code,country,strike_off_since,missing_from_bulk,deleted_at,source,source_time,updated_at,change_seq,strike_off_kind,gazette_notice_on,dissolution_due_on,strike_off_suspended_at",
		"strike-off": "company_number,company_name,strike_off_since,first_seen,company_type,date_of_creation,sic_codes,address_line_1,address_line_2,locality,region,postal_code,country,source_time,change_seq,strike_off_kind,gazette_notice_on,dissolution_due_on,strike_off_suspended_at",
		"officers":   "company_number,company_name,officer_id,name,officer_role,appointed_on,resigned_on,nationality,occupation,country_of_residence,birth_month,birth_year,address_line_1,address_line_2,locality,region,postal_code,country,fetched_at,change_seq",
		"changes":    "id,company_number,company_name,change,old_status,old_detail,new_status,new_detail,source,first_seen,timepoint,source_time,detected_at,change_seq",
	}
	rows := map[string]int{"companies": 3, "strike-off": 2, "officers": 1, "changes": 1}
	for kind, header := range want {
		t.Run(kind, func(t *testing.T) {
			is := is.New(t)
			code, out, errs := exportRun(t, "--db", path, "export", kind)
			is.Equal(code, ExitOK)
			is.Equal(errs, "")
			recs := exportParse(t, out)
			is.Equal(strings.Join(recs[0], ","), header)
			is.Equal(len(recs)-1, rows[kind])
			is.True(strings.Contains(out, "CÔTÉ 株式会社")) // UTF-8 as is
		})
	}

	t.Run("RoundTripAndNeutralise", func(t *testing.T) {
		is := is.New(t)
		_, out, _ := exportRun(t, "--db", path, "export", "strike-off")
		recs := exportParse(t, out)
		is.Equal(recs[2][0], "00000001")
		is.Equal(recs[2][1], exportTricky)
		is.Equal(recs[2][7], "'@risky")
		_, out, _ = exportRun(t, "--db", path, "export", "officers")
		is.Equal(exportParse(t, out)[1][3], `'=HYPERLINK("http://evil")`)
	})
	t.Run("Raw", func(t *testing.T) {
		is := is.New(t)
		_, out, _ := exportRun(t, "--db", path, "export", "officers", "--raw")
		is.Equal(exportParse(t, out)[1][3], `=HYPERLINK("http://evil")`)
	})
	t.Run("Since", func(t *testing.T) {
		is := is.New(t)
		code, out, _ := exportRun(t, "--db", path, "export", "strike-off", "--since", "2026-11-02T09:00:00Z")
		is.Equal(code, ExitOK)
		recs := exportParse(t, out)
		is.Equal(len(recs), 2) // inclusive: the company that entered at that second
		is.Equal(recs[1][0], "00000002")
	})
	t.Run("OutFile", func(t *testing.T) {
		is := is.New(t)
		out := filepath.Join(t.TempDir(), "strike-off.csv")
		code, stdout, _ := exportRun(t, "--db", path, "export", "strike-off", "--out", out) // the SPEC's cron line
		is.Equal(code, ExitOK)
		is.Equal(stdout, "")
		b, err := os.ReadFile(out)
		is.NoErr(err)
		is.Equal(len(exportParse(t, string(b))), 3)
		st, err := os.Stat(out)
		is.NoErr(err)
		is.Equal(st.Mode().Perm(), os.FileMode(0o640))
	})
}

func TestExportUsage(t *testing.T) {
	_, path := exportDB(t)
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"NoKind", []string{"export"}, "exactly one KIND"},
		{"TwoKinds", []string{"export", "companies", "officers"}, "exactly one KIND"},
		{"UnknownKind", []string{"export", "people"}, "strike-off"},
		{"BadSince", []string{"export", "companies", "--since", "yesterday"}, "RFC 3339"},
		{"SinceAndState", []string{"export", "companies", "--since", "2026-11-01T00:00:00Z", "--state", filepath.Join(t.TempDir(), "s")}, "do not go together"},
		{"UnknownFlag", []string{"export", "companies", "--bogus"}, "bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			code, out, errs := exportRun(t, append([]string{"--db", path}, tc.args...)...)
			is.Equal(code, ExitUsage)
			is.Equal(out, "")
			is.True(strings.Contains(errs, tc.msg))
		})
	}
}

func TestExportState(t *testing.T) {
	is := is.New(t)
	d, path := exportDB(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "companies.state")
	out := filepath.Join(dir, "companies.csv")
	export := func() [][]string {
		t.Helper()
		code, _, errs := exportRun(t, "--db", path, "export", "companies", "--state", state, "--out", out)
		if code != ExitOK {
			t.Fatalf("export: exit %d: %s", code, errs)
		}
		b, err := os.ReadFile(out)
		is.NoErr(err)
		return exportParse(t, string(b))
	}
	mark := func() string {
		t.Helper()
		b, err := os.ReadFile(state)
		is.NoErr(err)
		return strings.TrimSpace(string(b))
	}

	is.Equal(len(export()), 4) // a missing state file means everything
	is.Equal(mark(), "5")
	st, err := os.Stat(state)
	is.NoErr(err)
	is.Equal(st.Mode().Perm(), os.FileMode(0o600))
	is.Equal(len(export()), 1) // nothing new: the header only
	is.Equal(mark(), "5")

	// A row committed late: the writer took its change_seq (6) and wrote,
	// but has not committed when the export reads. The export is not
	// blocked, does not see the row, and does not move the mark past it.
	ctx := context.Background()
	tx, err := d.W.BeginTx(ctx, nil)
	is.NoErr(err)
	defer tx.Rollback()
	seq, err := db.BeginSeq(ctx, tx)
	is.NoErr(err)
	exportAddCompany(t, tx, seq, "LATE0001", "LATE LIMITED", "", "")
	is.NoErr(seq.Save(ctx, tx))
	is.Equal(len(export()), 1)
	is.Equal(mark(), "5")
	is.NoErr(tx.Commit())

	recs := export()
	is.Equal(len(recs), 2)
	is.Equal(recs[1][0], "LATE0001") // not skipped
	is.Equal(mark(), "6")

	t.Run("CorruptStateFile", func(t *testing.T) {
		is := is.New(t)
		bad := filepath.Join(t.TempDir(), "bad.state")
		is.NoErr(os.WriteFile(bad, []byte("garbage\n"), 0o600))
		o := filepath.Join(t.TempDir(), "x.csv")
		code, stdout, errs := exportRun(t, "--db", path, "export", "companies", "--state", bad, "--out", o)
		is.Equal(code, ExitFailure)
		is.Equal(stdout, "")
		is.True(strings.Contains(errs, bad)) // names the file
		_, err := os.Stat(o)
		is.True(os.IsNotExist(err)) // nothing written
	})

	t.Run("OutFailureKeepsOldFileAndMark", func(t *testing.T) {
		for _, tc := range []struct{ name, out string }{
			{"MissingDirectory", filepath.Join(dir, "nope", "x.csv")},
			{"TargetIsADirectory", dir},
		} {
			t.Run(tc.name, func(t *testing.T) {
				is := is.New(t)
				is.NoErr(os.WriteFile(state, []byte("2\n"), 0o600))
				code, _, errs := exportRun(t, "--db", path, "export", "companies", "--state", state, "--out", tc.out)
				is.Equal(code, ExitFailure)
				is.True(strings.Contains(errs, tc.out))
				is.Equal(mark(), "2") // not advanced
			})
		}
	})

	t.Run("FailedExportKeepsOldFile", func(t *testing.T) {
		is := is.New(t)
		before, err := os.ReadFile(out)
		is.NoErr(err)
		is.NoErr(os.WriteFile(state, []byte("99\n"), 0o600)) // ahead of the database: refused
		code, _, errs := exportRun(t, "--db", path, "export", "companies", "--state", state, "--out", out)
		is.Equal(code, ExitFailure)
		is.True(strings.Contains(errs, "delete the state file"))
		after, err := os.ReadFile(out)
		is.NoErr(err)
		is.Equal(string(after), string(before))
		is.Equal(mark(), "99")
		ents, err := os.ReadDir(dir)
		is.NoErr(err)
		for _, e := range ents {
			is.True(!strings.Contains(e.Name(), ".tmp-")) // no temporary file left
		}
	})
}

func TestExportMissingDatabase(t *testing.T) {
	is := is.New(t)
	code, _, errs := exportRun(t, "--db", filepath.Join(t.TempDir(), "none.db"), "export", "companies")
	is.Equal(code, ExitFailure)
	is.True(strings.Contains(errs, "migrate up"))
}

func TestExportDueBefore(t *testing.T) {
	_, path := exportDB(t)
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"Date", []string{"strike-off", "--due-before", "2027-02-01"}, ExitOK, ""},
		{"NotADate", []string{"strike-off", "--due-before", "February"}, ExitUsage, `--due-before "February" is not a date: want YYYY-MM-DD`},
		{"NoDay", []string{"strike-off", "--due-before", "2027-02-30"}, ExitUsage, "want YYYY-MM-DD"},
		{"OtherKind", []string{"companies", "--due-before", "2027-02-01"}, ExitUsage, "--due-before is for the strike-off export only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			code, out, errs := exportRun(t, append([]string{"--db", path, "export"}, c.args...)...)
			is.Equal(code, c.code)
			is.True(strings.Contains(errs, c.want))
			if c.code == ExitOK {
				recs := exportParse(t, out)
				is.Equal(recs[0][len(recs[0])-2], "dissolution_due_on")
				is.Equal(len(recs), 1) // the fixture's companies have no notice yet
			} else {
				is.Equal(out, "")
			}
		})
	}
}
