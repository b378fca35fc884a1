package stream

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// chunkReader returns its data in reads of the given sizes, cycling.
type chunkReader struct {
	data  []byte
	sizes []int
	n     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	size := 1
	if len(r.sizes) > 0 {
		size = max(1, r.sizes[r.n%len(r.sizes)])
		r.n++
	}
	n := copy(p[:min(len(p), size)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// readAll runs the line reader to the end; oversized lines are reported as
// "OVERSIZED <size> <timepoint>".
func readAll(t testing.TB, r io.Reader, max int) (out []string, partial int64) {
	lr := newLineReader(r, max)
	for {
		l, err := lr.next()
		if err == io.EOF {
			return out, lr.partial
		}
		if err != nil {
			t.Fatal(err)
		}
		switch l.kind {
		case lineHeartbeat:
			out = append(out, "HEARTBEAT")
		case lineOversized:
			if len(l.head) > excerptBytes {
				t.Fatalf("head of %d bytes", len(l.head))
			}
			out = append(out, "OVERSIZED "+itoa(l.size)+" "+itoa(l.timepoint))
		default:
			if len(l.data) > max {
				t.Fatalf("line of %d bytes over the limit %d", len(l.data), max)
			}
			out = append(out, string(l.data))
		}
	}
}

// referenceLines is the obvious, unbounded splitter readAll must agree with.
func referenceLines(data []byte, max int) (out []string, partial int64) {
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return out, int64(len(data))
		}
		line := bytes.TrimSuffix(data[:i], []byte("\r"))
		data = data[i+1:]
		switch {
		case len(line) > max:
			out = append(out, "OVERSIZED "+itoa(int64(len(line)))+" "+itoa(recoverTimepoint(tailOf(line))))
		case len(bytes.TrimSpace(line)) == 0:
			out = append(out, "HEARTBEAT")
		default:
			out = append(out, string(line))
		}
	}
}

func TestLineReader(t *testing.T) {
	long := `{"data":"` + strings.Repeat("z", 300) + `","event":{"timepoint":31,"type":"changed"}}`
	input := "a\n\nb\r\n\r\n \n" + long + "\n" + "c\npartial"
	for _, sizes := range [][]int{nil, {1}, {2, 3, 5, 7}, {1 << 20}} {
		is := is.New(t)
		got, partial := readAll(t, &chunkReader{data: []byte(input), sizes: sizes}, 100)
		is.Equal(got, []string{"a", "HEARTBEAT", "b", "HEARTBEAT", "HEARTBEAT", "OVERSIZED " + itoa(int64(len(long))) + " 31", "c"})
		is.Equal(partial, int64(len("partial"))) // an unterminated last line is dropped
	}
}

// bigLineReader streams one line of n bytes, then a short line, without
// holding either in memory.
type bigLineReader struct {
	head, tail []byte
	fill       int64
	pos        int64
}

func (r *bigLineReader) Read(p []byte) (int, error) {
	total := int64(len(r.head)) + r.fill + int64(len(r.tail))
	if r.pos >= total {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.pos < total {
		switch {
		case r.pos < int64(len(r.head)):
			c := copy(p[n:], r.head[r.pos:])
			n += c
			r.pos += int64(c)
		case r.pos < int64(len(r.head))+r.fill:
			c := int(min(int64(len(p)-n), int64(len(r.head))+r.fill-r.pos))
			for i := range c {
				p[n+i] = 'A'
			}
			n += c
			r.pos += int64(c)
		default:
			c := copy(p[n:], r.tail[r.pos-int64(len(r.head))-r.fill:])
			n += c
			r.pos += int64(c)
		}
	}
	return n, nil
}

func TestOversizedLineBoundedMemory(t *testing.T) {
	is := is.New(t)
	const fill = 50 << 20
	head := []byte(`{"resource_id":"01234567","data":{"blob":"`)
	tail := []byte(`"},"event":{"timepoint":47695999,"published_at":"2026-11-01T10:00:00","type":"changed"}}` + "\n" + event(47696000, "00000001") + "\n")
	r := &bigLineReader{head: head, tail: tail, fill: fill}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	lr := newLineReader(r, DefaultMaxLineBytes)
	l, err := lr.next()
	is.NoErr(err)
	is.Equal(l.kind, lineOversized)
	is.Equal(l.timepoint, int64(47695999))
	wantSize := int64(len(head)) + fill + int64(len(tail)) - int64(len(event(47696000, "00000001"))) - 2
	is.Equal(l.size, wantSize)
	is.True(bytes.HasPrefix(l.head, head))
	is.Equal(len(l.head), excerptBytes)
	l, err = lr.next()
	is.NoErr(err)
	is.Equal(l.kind, lineData)
	it, err := Decode(l.data, time.Time{})
	is.NoErr(err)
	is.Equal(it.Event.Timepoint, int64(47696000))
	runtime.ReadMemStats(&after)

	// The 4 MiB line buffer, the 64 KiB read buffer and the tail ring: a
	// fraction of the 50 MB line.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes for a %d byte line", alloc, fill)
	is.True(alloc < 12<<20) // the line was not buffered whole
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\n"), uint8(1), uint8(3))
	f.Add([]byte("\n\r\n \n{\"event\":{\"timepoint\":5}}\n"), uint8(2), uint8(0))
	f.Add([]byte(strings.Repeat("x", 200)+`"timepoint":77}`+"\nshort\n"), uint8(7), uint8(64))
	f.Add([]byte(strings.Repeat("y", 5000)+`,"event":{"timepoint":12345,"x":1}}`+"\r\ntail-without-newline"), uint8(13), uint8(255))
	f.Add([]byte("\r\r\n\n\r"), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk, maxSel uint8) {
		max := 1 + int(maxSel)*17 // 1 .. 4336: small limits exercise every path
		want, wantPartial := referenceLines(data, max)
		got, partial := readAll(t, &chunkReader{data: bytes.Clone(data), sizes: []int{int(chunk), 1, int(chunk) * 31}}, max)
		if len(got) != len(want) {
			t.Fatalf("got %d lines %q, want %d %q", len(got), got, len(want), want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("line %d: got %q, want %q", i, got[i], want[i])
			}
		}
		if partial != wantPartial {
			t.Fatalf("partial %d, want %d", partial, wantPartial)
		}
	})
}

func BenchmarkReadLines(b *testing.B) {
	line := benchLine(b)
	var data []byte
	for len(data) < 8<<20 {
		data = append(data, line...)
		data = append(data, '\n')
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		lr := newLineReader(&chunkReader{data: data, sizes: []int{1500, 16 << 10, 333}}, DefaultMaxLineBytes)
		for {
			if _, err := lr.next(); err != nil {
				break
			}
		}
	}
}

// BenchmarkReadDecode is the client's hot path: lines, then Decode.
func BenchmarkReadDecode(b *testing.B) {
	line := benchLine(b)
	var data []byte
	for len(data) < 8<<20 {
		data = append(data, line...)
		data = append(data, '\n')
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		lr := newLineReader(bytes.NewReader(data), DefaultMaxLineBytes)
		for {
			l, err := lr.next()
			if err != nil {
				break
			}
			if _, err := Decode(l.data, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
