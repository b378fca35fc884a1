package stream

import (
	"bufio"
	"bytes"
	"io"
)

// readBufferBytes is the size of the bufio.Reader under the line reader.
const readBufferBytes = 64 << 10

// keepLineBuffer is the capacity above which the line buffer is released
// after a long line, so one 4 MiB line does not pin 4 MiB for a day.
const keepLineBuffer = 1 << 20

type lineKind int

const (
	lineData      lineKind = iota // a line to decode
	lineHeartbeat                 // an empty (or blank) line
	lineOversized                 // a line longer than the limit, not kept
)

// rawLine is one line from the stream. data is valid only until the next
// call to next. For lineOversized, head holds the first bytes, size the full
// length and timepoint what could be recovered from the tail.
type rawLine struct {
	kind      lineKind
	data      []byte
	size      int64
	head      []byte
	timepoint int64
}

// lineReader splits a byte stream into lines across arbitrary chunk
// boundaries, with memory bounded by max whatever arrives: a longer line is
// counted and skipped, keeping only its head and a bounded tail.
type lineReader struct {
	br   *bufio.Reader
	max  int
	buf  []byte
	head []byte
	tail []byte
	// partial is the length of an unterminated line dropped at the end of
	// input (a connection cut mid-line); resuming at last+1 fetches it again.
	partial int64
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, readBufferBytes), max: max}
}

// next returns the next complete line. An unterminated line at the end of
// input is dropped (its length is in lr.partial) and the read error returned.
func (lr *lineReader) next() (rawLine, error) {
	if cap(lr.buf) > keepLineBuffer {
		lr.buf = nil
	}
	lr.buf = lr.buf[:0]
	lr.partial = 0
	over := false
	var size int64
	for {
		chunk, err := lr.br.ReadSlice('\n')
		size += int64(len(chunk))
		switch {
		case over:
			lr.spill(chunk)
		case len(lr.buf) == 0 && err == nil:
			// The whole line is in the bufio buffer: no copy.
			return lr.finish(chunk), nil
		case len(lr.buf)+len(chunk) <= lr.max+2: // +2: room for "\r\n"
			lr.buf = appendBounded(lr.buf, chunk, lr.max+2)
		default:
			over = true
			lr.head = lr.head[:0]
			lr.tail = lr.tail[:0]
			lr.spill(lr.buf)
			lr.spill(chunk)
			lr.buf = lr.buf[:0]
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			lr.partial = size
			return rawLine{}, err
		}
		if !over {
			return lr.finish(lr.buf), nil
		}
		tail := trimEOL(lr.tail)
		return rawLine{
			kind:      lineOversized,
			size:      size - int64(len(lr.tail)-len(tail)),
			head:      lr.head,
			timepoint: recoverTimepoint(tailOf(tail)),
		}, nil
	}
}

// finish classifies a complete line that fitted in memory.
func (lr *lineReader) finish(line []byte) rawLine {
	line = trimEOL(line)
	if len(line) > lr.max {
		return rawLine{
			kind:      lineOversized,
			size:      int64(len(line)),
			head:      append(lr.head[:0], line[:min(excerptBytes, len(line))]...),
			timepoint: recoverTimepoint(tailOf(line)),
		}
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return rawLine{kind: lineHeartbeat}
	}
	return rawLine{kind: lineData, data: line, size: int64(len(line))}
}

// spill records p as part of an oversized line: the first excerptBytes in
// head, the last tailBytes (at least) in tail.
func (lr *lineReader) spill(p []byte) {
	if n := excerptBytes - len(lr.head); n > 0 {
		lr.head = append(lr.head, p[:min(n, len(p))]...)
	}
	if len(p) >= tailBytes {
		lr.tail = append(lr.tail[:0], p[len(p)-tailBytes:]...)
		return
	}
	if lr.tail == nil {
		lr.tail = make([]byte, 0, 2*tailBytes)
	}
	if len(lr.tail)+len(p) > cap(lr.tail) {
		keep := min(len(lr.tail), tailBytes-len(p))
		copy(lr.tail, lr.tail[len(lr.tail)-keep:])
		lr.tail = lr.tail[:keep]
	}
	lr.tail = append(lr.tail, p...)
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

// appendBounded appends p to buf, growing the capacity geometrically but
// never beyond limit.
func appendBounded(buf, p []byte, limit int) []byte {
	need := len(buf) + len(p)
	if need > cap(buf) {
		c := max(2*cap(buf), need, 4096)
		c = min(c, max(limit, need))
		nb := make([]byte, len(buf), c)
		copy(nb, buf)
		buf = nb
	}
	return append(buf, p...)
}
