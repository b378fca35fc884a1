package importer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/chwatch/chwatch/bulk"
	"github.com/chwatch/chwatch/db"
)

// The external sort (docs/design.md, "Import in company-number order"). Its
// sizes bound the import's memory whatever the file: runBytes of encoded
// rows sorted at a time, and fanIn runs merged at once through mergeBuffer
// bytes each.
const (
	runBytes    = 4 << 20
	fanIn       = 64
	mergeBuffer = 32 << 10
	writeBuffer = 64 << 10
)

// sortKey is where a row goes: its company number (eight letters or digits,
// as the reader checks, packed big-endian so that integer order is byte
// order) and its line, so that two rows of one number keep file order.
type sortKey struct {
	number uint64
	line   int64
}

func (k sortKey) compare(o sortKey) int {
	switch {
	case k.number < o.number:
		return -1
	case k.number > o.number:
		return 1
	case k.line < o.line:
		return -1
	case k.line > o.line:
		return 1
	}
	return 0
}

// keyOf returns the key of a row; ok is false for a number that is not eight
// bytes (the reader never lets one through).
func keyOf(number string, line int64) (sortKey, bool) {
	if len(number) != 8 {
		return sortKey{}, false
	}
	return sortKey{number: binary.BigEndian.Uint64([]byte(number)), line: line}, true
}

// An encoded row: the uvarint length of its body, then the body: the number
// (8 bytes), the line (uvarint), the strings company.Version is made of,
// each a uvarint length and its bytes, then the SIC codes and the unknown
// texts, each a uvarint count of such strings.
func appendRecord(b []byte, r *bulk.Record) []byte {
	body := 8 + binary.MaxVarintLen64
	for _, s := range recordStrings(r) {
		body += binary.MaxVarintLen64 + len(*s)
	}
	for _, s := range r.SICCodes {
		body += binary.MaxVarintLen64 + len(s)
	}
	for _, s := range r.Unknown {
		body += binary.MaxVarintLen64 + len(s)
	}
	body += 2 * binary.MaxVarintLen64
	// The length goes first, so write the body after room for it, then
	// move it up once its size is known.
	start := len(b)
	b = slices.Grow(b, binary.MaxVarintLen64+body)
	b = b[:start+binary.MaxVarintLen64]
	b = append(b, r.CompanyNumber...)
	b = binary.AppendUvarint(b, uint64(r.Line))
	for _, s := range recordStrings(r) {
		b = appendString(b, *s)
	}
	b = binary.AppendUvarint(b, uint64(len(r.SICCodes)))
	for _, s := range r.SICCodes {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Unknown)))
	for _, s := range r.Unknown {
		b = appendString(b, s)
	}
	n := len(b) - start - binary.MaxVarintLen64
	var lenBuf [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(lenBuf[:], uint64(n))
	copy(b[start:], lenBuf[:l])
	copy(b[start+l:], b[start+binary.MaxVarintLen64:])
	return b[:start+l+n]
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// recordStrings lists the record's string fields in their encoded order.
func recordStrings(r *bulk.Record) [13]*string {
	return [13]*string{
		&r.CompanyName, &r.CompanyStatus, &r.CompanyStatusDetail, &r.CompanyType,
		&r.Jurisdiction, &r.DateOfCreation, &r.DateOfCessation,
		&r.AddressLine1, &r.AddressLine2, &r.Locality, &r.Region, &r.PostalCode, &r.Country,
	}
}

var errCorruptRun = errors.New("corrupt sort run")

// decodeRecord turns an encoded body back into a Record. Its strings share
// one allocation, the body's.
func decodeRecord(body []byte) (bulk.Record, error) {
	var r bulk.Record
	s := string(body)
	if len(s) < 9 {
		return r, errCorruptRun
	}
	r.CompanyNumber = s[:8]
	pos := 8
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(body[pos:])
		if n <= 0 {
			return 0, false
		}
		pos += n
		return v, true
	}
	// size reads a length or a count: never more than the bytes left.
	size := func() (int, bool) {
		v, ok := uv()
		if !ok || v > uint64(len(s)-pos) {
			return 0, false
		}
		return int(v), true
	}
	str := func() (string, bool) {
		n, ok := size()
		if !ok || pos+n > len(s) {
			return "", false
		}
		pos += n
		return s[pos-n : pos], true
	}
	line, ok := uv()
	if !ok {
		return r, errCorruptRun
	}
	r.Line = int64(line)
	for _, p := range recordStrings(&r) {
		if *p, ok = str(); !ok {
			return r, errCorruptRun
		}
	}
	for _, list := range []*[]string{&r.SICCodes, &r.Unknown} {
		n, ok := size()
		if !ok {
			return r, errCorruptRun
		}
		if n > 0 {
			*list = make([]string, n)
		}
		for i := range n {
			if (*list)[i], ok = str(); !ok {
				return r, errCorruptRun
			}
		}
	}
	if pos != len(s) {
		return r, errCorruptRun
	}
	return r, nil
}

// bodyKey reads the key at the start of an encoded body.
func bodyKey(body []byte) (sortKey, bool) {
	if len(body) < 9 {
		return sortKey{}, false
	}
	line, n := binary.Uvarint(body[8:])
	if n <= 0 {
		return sortKey{}, false
	}
	return sortKey{number: binary.BigEndian.Uint64(body[:8]), line: int64(line)}, true
}

// sorter collects encoded rows, writes them out in sorted runs of about
// runBytes, and merges the runs.
type sorter struct {
	dir             *sortDir
	runBytes, fanIn int
	arena           []byte // the rows of the run being collected, encoded
	index           []runEntry
	runs            []string // run files, oldest first
	rows            int64    // rows added
	// written counts the bytes of every run file written, intermediate
	// merges included, for the free-space error.
	written int64
	// need estimates the run bytes the whole file needs, for the
	// free-space error; set by the caller as the file is read.
	need func() int64
}

type runEntry struct {
	key      sortKey
	off, end int // the encoded row in arena, its length prefix included
}

func newSorter(dir *sortDir, runBytes, fanIn int) *sorter {
	return &sorter{dir: dir, runBytes: runBytes, fanIn: fanIn, arena: make([]byte, 0, runBytes+64<<10)}
}

// add encodes a row into the run being collected, writing the run out first
// when it is full.
func (s *sorter) add(r *bulk.Record) error {
	key, ok := keyOf(r.CompanyNumber, r.Line)
	if !ok {
		return fmt.Errorf("sort line %d: company number %q is not 8 characters", r.Line, r.CompanyNumber)
	}
	if len(s.arena) >= s.runBytes {
		if err := s.flush(); err != nil {
			return err
		}
	}
	off := len(s.arena)
	s.arena = appendRecord(s.arena, r)
	s.index = append(s.index, runEntry{key: key, off: off, end: len(s.arena)})
	s.rows++
	return nil
}

// flush sorts the run being collected and writes it to a file of its own.
func (s *sorter) flush() error {
	if len(s.index) == 0 {
		return nil
	}
	slices.SortFunc(s.index, func(a, b runEntry) int { return a.key.compare(b.key) })
	w, err := s.newRun()
	if err != nil {
		return err
	}
	for _, e := range s.index {
		if _, err := w.Write(s.arena[e.off:e.end]); err != nil {
			w.abort()
			return s.writeErr(err)
		}
	}
	if err := w.close(); err != nil {
		return s.writeErr(err)
	}
	s.runs = append(s.runs, w.name)
	s.arena, s.index = s.arena[:0], s.index[:0]
	return nil
}

// finish writes the last run and merges runs until at most s.fanIn are
// left, so the final merge reads them all at once. It frees the memory of
// collecting.
func (s *sorter) finish(ctx context.Context) error {
	if err := s.flush(); err != nil {
		return err
	}
	s.arena, s.index = nil, nil
	for len(s.runs) > s.fanIn {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Merge just enough of the oldest (smallest) runs that the rest
		// fit in one final merge.
		k := min(s.fanIn, len(s.runs)-s.fanIn+1)
		w, err := s.newRun()
		if err != nil {
			return err
		}
		err = s.mergeRuns(s.runs[:k], func(body []byte) error {
			return writeBody(w, body)
		})
		if err != nil {
			w.abort()
			return s.writeErr(err)
		}
		if err := w.close(); err != nil {
			return s.writeErr(err)
		}
		for _, name := range s.runs[:k] {
			os.Remove(name)
		}
		s.runs = append(s.runs[k:], w.name)
	}
	return nil
}

// merge sends every row of the runs, in key order, in chunks of chunkRows,
// the last one marked eof, until ctx ends.
func (s *sorter) merge(ctx context.Context, out chan<- chunk) {
	c := chunk{items: make([]item, 0, chunkRows)}
	send := func() bool {
		select {
		case out <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	err := s.mergeRuns(s.runs, func(body []byte) error {
		rec, err := decodeRecord(body)
		if err != nil {
			return err
		}
		c.items = append(c.items, item{rec: rec})
		if len(c.items) == chunkRows {
			if !send() {
				return ctx.Err()
			}
			c = chunk{items: make([]item, 0, chunkRows)}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			c.err = fmt.Errorf("merge the sorted rows in %s: %w", s.dir.path, err)
			send()
		}
		return
	}
	c.eof = true
	send()
}

// mergeRuns calls emit with every encoded body of the runs, in key order.
func (s *sorter) mergeRuns(names []string, emit func(body []byte) error) error {
	var h runHeap
	defer func() {
		for _, r := range h {
			r.f.Close()
		}
	}()
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("open sort run: %w", err)
		}
		r := &runReader{f: f, br: bufio.NewReaderSize(f, mergeBuffer)}
		ok, err := r.next()
		if err != nil {
			f.Close()
			return err
		}
		if !ok {
			f.Close()
			continue
		}
		h = append(h, r)
	}
	h.init()
	for len(h) > 0 {
		r := h[0]
		if err := emit(r.body); err != nil {
			return err
		}
		ok, err := r.next()
		if err != nil {
			return err
		}
		if !ok {
			r.f.Close()
			h.pop()
			continue
		}
		h.fix()
	}
	return nil
}

func writeBody(w io.Writer, body []byte) error {
	var lenBuf [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(lenBuf[:], uint64(len(body)))
	if _, err := w.Write(lenBuf[:l]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// runReader reads one run's encoded rows.
type runReader struct {
	f    *os.File
	br   *bufio.Reader
	body []byte // the current row's body, reused
	key  sortKey
}

// next reads the next row; false at the end of the run.
func (r *runReader) next() (bool, error) {
	n, err := binary.ReadUvarint(r.br)
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read sort run %s: %w", r.f.Name(), err)
	}
	if n > 1<<24 {
		return false, fmt.Errorf("read sort run %s: %w", r.f.Name(), errCorruptRun)
	}
	r.body = slices.Grow(r.body[:0], int(n))[:n]
	if _, err := io.ReadFull(r.br, r.body); err != nil {
		return false, fmt.Errorf("read sort run %s: %w", r.f.Name(), err)
	}
	var ok bool
	if r.key, ok = bodyKey(r.body); !ok {
		return false, fmt.Errorf("read sort run %s: %w", r.f.Name(), errCorruptRun)
	}
	return true, nil
}

// runHeap is a min-heap of run readers by their current key.
type runHeap []*runReader

func (h runHeap) less(i, j int) bool { return h[i].key.compare(h[j].key) < 0 }

func (h runHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// fix restores the heap after the top's key grew.
func (h runHeap) fix() { h.down(0) }

func (h *runHeap) pop() {
	old := *h
	n := len(old) - 1
	old[0] = old[n]
	old[n] = nil
	*h = old[:n]
	h.down(0)
}

func (h runHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// runWriter writes one run file.
type runWriter struct {
	s    *sorter
	f    io.WriteCloser
	bw   *bufio.Writer
	name string
}

func (s *sorter) newRun() (*runWriter, error) {
	f, name, err := s.dir.create()
	if err != nil {
		return nil, s.writeErr(err)
	}
	w := &runWriter{s: s, f: f, name: name}
	w.bw = bufio.NewWriterSize(countingWriter{w: f, n: &s.written}, writeBuffer)
	return w, nil
}

func (w *runWriter) Write(p []byte) (int, error) { return w.bw.Write(p) }

func (w *runWriter) close() error {
	err := w.bw.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(w.name)
	}
	return err
}

// abort drops a run that failed to be written.
func (w *runWriter) abort() {
	w.f.Close()
	os.Remove(w.name)
}

type countingWriter struct {
	w io.Writer
	n *int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}

// writeErr explains a failure to write a run: on a full disk, where and how
// much space the sort needs.
func (s *sorter) writeErr(err error) error {
	if !isNoSpace(err) {
		return fmt.Errorf("write sorted rows to %s: %w", s.dir.path, err)
	}
	need := s.written
	if s.need != nil {
		need = max(need, s.need())
	}
	free := ""
	if f, err := db.FreeBytes(s.dir.path); err == nil {
		free = fmt.Sprintf(", %s free now", megabytes(f))
	}
	return fmt.Errorf("%w: %s is full: the import sorts the file's rows in files there before applying them, and needs about %s for this file (%s written when the disk filled%s): free space on that disk and run the same command again (this run applied no row)",
		ErrNoSpace, s.dir.path, megabytes(need), megabytes(s.written), free)
}

func megabytes(n int64) string {
	return fmt.Sprintf("%d MB", (n+(1<<20)-1)>>20)
}
