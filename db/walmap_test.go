package db_test

import (
	"cmp"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/matryer/is"
	_ "modernc.org/sqlite"
)

// TestWALMap maps the committed frames of a database's WAL to the B-trees
// their pages belong to: what each commit writes, for the bytes-per-event
// work (docs/design.md). It is a tool, not a check: it runs only when
// CHWATCHTEST_WALMAP names a database whose -wal was left by a killed
// writer with database.checkpoints = external (scripts/wal-map drives it).
// CHWATCHTEST_WALMAP_EVENTS, when set, is the number of events the WAL
// holds, for per-event figures.
func TestWALMap(t *testing.T) {
	path := os.Getenv("CHWATCHTEST_WALMAP")
	if path == "" {
		t.Skip("CHWATCHTEST_WALMAP is not set")
	}
	is := is.New(t)
	// Opening the database would checkpoint and remove its WAL: work on a
	// copy.
	dir := t.TempDir()
	cp := filepath.Join(dir, "copy.db")
	is.NoErr(copyFile(path, cp))
	is.NoErr(copyFile(path+"-wal", cp+"-wal"))
	wal, err := readWAL(cp + "-wal")
	is.NoErr(err)

	d, err := sql.Open("sqlite", "file:"+cp)
	is.NoErr(err)
	defer d.Close()
	owner := map[uint32]string{}
	rows, err := d.Query("SELECT name, pageno, pagetype FROM dbstat")
	is.NoErr(err)
	for rows.Next() {
		var name, typ string
		var pg uint32
		is.NoErr(rows.Scan(&name, &pg, &typ))
		owner[pg] = name + " (" + typ + ")"
	}
	is.NoErr(rows.Err())
	owner[1] = "page 1 (header, sqlite_schema)"
	j := uint32(wal.pageSize / 5) // pages a pointer-map page covers
	name := func(pg uint32) string {
		if n, ok := owner[pg]; ok {
			return n
		}
		if pg >= 2 && (pg-2)%(j+1) == 0 {
			return "pointer map (auto_vacuum)"
		}
		return "free or unknown"
	}
	type stat struct {
		name   string
		frames int
		pages  map[uint32]bool
	}
	by := map[string]*stat{}
	for _, f := range wal.frames {
		n := name(f)
		s := by[n]
		if s == nil {
			s = &stat{name: n, pages: map[uint32]bool{}}
			by[n] = s
		}
		s.frames++
		s.pages[f] = true
	}
	var all []*stat
	for _, s := range by {
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b *stat) int { return cmp.Compare(b.frames, a.frames) })
	events, _ := strconv.ParseFloat(os.Getenv("CHWATCHTEST_WALMAP_EVENTS"), 64)
	frameBytes := float64(wal.pageSize + 24)
	fmt.Printf("WAL: page size %d, %d commits, %d frames: %.2f frames a commit, %.0f bytes a commit\n",
		wal.pageSize, wal.commits, len(wal.frames), float64(len(wal.frames))/float64(wal.commits), float64(len(wal.frames))*frameBytes/float64(wal.commits))
	if events > 0 {
		fmt.Printf("events %.0f: %.2f a commit, %.0f WAL bytes an event\n", events, events/float64(wal.commits), float64(len(wal.frames))*frameBytes/events)
	}
	fmt.Printf("%-55s %8s %10s %8s\n", "b-tree (page type)", "frames", "per commit", "pages")
	for _, s := range all {
		fmt.Printf("%-55s %8d %10.2f %8d\n", s.name, s.frames, float64(s.frames)/float64(wal.commits), len(s.pages))
	}
}

type walFile struct {
	pageSize int
	commits  int
	frames   []uint32 // page number of each committed frame
}

// readWAL reads the frames of a WAL up to its last commit, stopping at the
// first frame of another generation (salts differ).
func readWAL(path string) (walFile, error) {
	var w walFile
	f, err := os.Open(path)
	if err != nil {
		return w, err
	}
	defer f.Close()
	hdr := make([]byte, 32)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return w, fmt.Errorf("read WAL header: %w", err)
	}
	w.pageSize = int(binary.BigEndian.Uint32(hdr[8:]))
	salt1, salt2 := binary.BigEndian.Uint32(hdr[16:]), binary.BigEndian.Uint32(hdr[20:])
	fh := make([]byte, 24)
	var pending []uint32
	for {
		if _, err := io.ReadFull(f, fh); err != nil {
			break
		}
		if binary.BigEndian.Uint32(fh[8:]) != salt1 || binary.BigEndian.Uint32(fh[12:]) != salt2 {
			break
		}
		pending = append(pending, binary.BigEndian.Uint32(fh[0:]))
		if binary.BigEndian.Uint32(fh[4:]) != 0 { // a commit frame
			w.frames = append(w.frames, pending...)
			pending = pending[:0]
			w.commits++
		}
		if _, err := f.Seek(int64(w.pageSize), io.SeekCurrent); err != nil {
			return w, err
		}
	}
	if w.commits == 0 {
		return w, fmt.Errorf("%s holds no committed frame", path)
	}
	return w, nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}
