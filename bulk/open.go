package bulk

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Open opens a bulk file, a .csv or a .zip holding one .csv, and returns its
// CSV stream without unpacking anything to disk, with the stream's
// uncompressed size for progress (-1 when unknown). A zip is recognised by its
// content, whatever its name. A zip with no CSV, or with more than one, is an
// error naming what it holds; the parts of a split product are separate zips,
// opened one by one.
//
// For a .csv the stream is the *os.File itself, so a caller resuming can Seek
// it; a zip entry cannot seek and must be discarded up to the offset.
func Open(path string) (io.ReadCloser, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("open bulk file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open bulk file %s: %w", path, err)
	}
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	if !bytes.Equal(magic[:n], []byte("PK\x03\x04")) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("open bulk file %s: %w", path, err)
		}
		return f, st.Size(), nil
	}

	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open bulk zip %s: %w", path, err)
	}
	var csvs []*zip.File
	var names []string
	for _, zf := range zr.File {
		names = append(names, zf.Name)
		base := filepath.Base(zf.Name)
		if zf.FileInfo().IsDir() || strings.HasPrefix(zf.Name, "__MACOSX/") || strings.HasPrefix(base, "._") {
			continue
		}
		if strings.EqualFold(filepath.Ext(base), ".csv") {
			csvs = append(csvs, zf)
		}
	}
	switch len(csvs) {
	case 0:
		f.Close()
		return nil, 0, fmt.Errorf("open bulk zip %s: no .csv inside (holds %s)", path, listOrNothing(names))
	case 1:
	default:
		f.Close()
		var cn []string
		for _, zf := range csvs {
			cn = append(cn, zf.Name)
		}
		return nil, 0, fmt.Errorf("open bulk zip %s: %d CSV files inside (%s), want one", path, len(csvs), strings.Join(cn, ", "))
	}
	rc, err := csvs[0].Open()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open %s in bulk zip %s: %w", csvs[0].Name, path, err)
	}
	size := int64(-1)
	if u := csvs[0].UncompressedSize64; u > 0 && u < 1<<62 {
		size = int64(u)
	}
	return &zipEntry{ReadCloser: rc, file: f}, size, nil
}

func listOrNothing(names []string) string {
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}

// zipEntry closes the entry and the archive file under it.
type zipEntry struct {
	io.ReadCloser
	file *os.File
}

func (z *zipEntry) Close() error {
	return errors.Join(z.ReadCloser.Close(), z.file.Close())
}

var dateInName = regexp.MustCompile(`(?:^|\D)(\d{4}-\d{2}-\d{2})(?:\D|$)`)

// AsOfFromName returns the as-of date in a bulk file's name, at 00:00 UTC:
// BasicCompanyDataAsOneFile-2026-11-01.zip and
// BasicCompanyData-2026-11-01-part1_7.csv are both 2026-11-01. Only the base
// name is searched, and the first real YYYY-MM-DD in it wins; ok is false when
// there is none.
func AsOfFromName(name string) (time.Time, bool) {
	base := name
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	for _, m := range dateInName.FindAllStringSubmatch(base, -1) {
		if t, err := time.Parse(time.DateOnly, m[1]); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
