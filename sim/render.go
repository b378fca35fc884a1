package sim

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendLine appends event idx (record r) as one stream line, "\n" included.
func (s *Sim) appendLine(b []byte, idx int64, r rec, padding int) []byte {
	num := s.statics[r.company].number[:]
	b = append(b, `{"resource_kind":"company-profile","resource_uri":"/company/`...)
	b = append(b, num...)
	b = append(b, `","resource_id":"`...)
	b = append(b, num...)
	b = append(b, '"')
	kind := r.kind &^ kFieldsChanged
	if kind != kDeleted {
		b = append(b, `,"data":`...)
		b = s.appendData(b, r.company, r.v, padding)
		if h := h3(s.seed, tagEnv, uint64(idx)); h%16 == 0 {
			// An envelope member chwatch does not know.
			b = append(b, `,"context_id":"`...)
			b = strconv.AppendUint(b, h>>20, 36)
			b = append(b, '"')
		}
	} else if padding > 0 {
		b = appendPadding(b, padding)
	}
	b = append(b, `,"event":{"timepoint":`...)
	b = strconv.AppendInt(b, s.cfg.FirstTimepoint+idx, 10)
	b = append(b, `,"published_at":"`...)
	b = appendDateTime(b, day(int64(r.pub)))
	if kind == kDeleted {
		b = append(b, `","type":"deleted"`...)
	} else {
		b = append(b, `","type":"changed"`...)
	}
	if r.kind&kFieldsChanged != 0 {
		b = append(b, `,"fields_changed":`...)
		b = append(b, fieldsChanged(kind)...)
	}
	return append(b, "}}\n"...)
}

// appendOversize appends event idx as an oversized line of exactly size bytes
// (or the shortest possible padded line when size is smaller).
func (s *Sim) appendOversize(b []byte, idx int64, r rec, size int) []byte {
	base := len(s.appendLine(b, idx, r, 0)) - len(b)
	const overhead = len(`,"sim_padding":""`) // the same for data and envelope placement
	return s.appendLine(b, idx, r, max(size-base-overhead, 1))
}

func appendPadding(b []byte, n int) []byte {
	b = append(b, `,"sim_padding":"`...)
	for range n {
		b = append(b, 'x')
	}
	return append(b, '"')
}

func fieldsChanged(k uint8) string {
	switch k {
	case kAddr, kUndelete:
		return `["registered_office_address.address_line_1","registered_office_address.postal_code"]`
	case kAcct:
		return `["accounts.last_accounts.made_up_to","accounts.next_due"]`
	case kSIC:
		return `["sic_codes"]`
	case kRename:
		return `["company_name","previous_company_names"]`
	case kConf:
		return `["confirmation_statement.next_due"]`
	case kDissolve:
		return `["company_status","date_of_cessation"]`
	}
	return `["company_status","company_status_detail"]`
}

// appendData appends the company profile of company ci at version v: the stream's
// "data" and the body of GET /company/{n}. padding > 0 adds a sim_padding member of
// that many bytes of content first.
func (s *Sim) appendData(b []byte, ci uint32, v version, padding int) []byte {
	st := &s.statics[ci]
	num := st.number[:]
	h := st.h
	b = append(b, '{')
	if padding > 0 {
		b = append(b, `"sim_padding":"`...)
		for range padding {
			b = append(b, 'x')
		}
		b = append(b, `",`...)
	}
	// accounts: accounting reference date is a month end; the counter moves the year.
	ardMonth := time.Month(1 + (h>>24)%12)
	if (h>>28)%3 == 0 {
		ardMonth = time.March
	}
	created := time.Date(1990+int((h>>32)%34), time.Month(1+(h>>40)%12), 1+int((h>>44)%28), 0, 0, 0, 0, time.UTC)
	year := max(2022, created.Year()+1) + int(v.acct)
	madeUp := time.Date(year, ardMonth+1, 0, 0, 0, 0, 0, time.UTC)
	nextMadeUp := time.Date(year+1, ardMonth+1, 0, 0, 0, 0, 0, time.UTC)
	nextDue := time.Date(year+1, ardMonth+10, 0, 0, 0, 0, 0, time.UTC)
	b = append(b, `"accounts":{"accounting_reference_date":{"day":"`...)
	b = strconv.AppendInt(b, int64(madeUp.Day()), 10)
	b = append(b, `","month":"`...)
	b = appendInt2(b, int(ardMonth))
	b = append(b, `"},"last_accounts":{"made_up_to":"`...)
	b = appendDate(b, madeUp)
	b = append(b, `","type":"`...)
	b = append(b, [...]string{"micro-entity", "total-exemption-full", "full", "dormant"}[(h>>48)%4]...)
	b = append(b, `"},"next_due":"`...)
	b = appendDate(b, nextDue)
	b = append(b, `","next_made_up_to":"`...)
	b = appendDate(b, nextMadeUp)
	b = append(b, `","overdue":false},"can_file":`...)
	b = strconv.AppendBool(b, v.status != stDissolved)
	b = append(b, `,"company_name":`...)
	b = appendString(b, s.companyName(ci, v.name))
	b = append(b, `,"company_number":"`...)
	b = append(b, num...)
	b = append(b, `","company_status":"`...)
	b = append(b, statusOf(v.status)...)
	b = append(b, '"')
	if d := detailOf(v.status); d != "" {
		b = append(b, `,"company_status_detail":"`...)
		b = append(b, d...)
		b = append(b, '"')
	}
	conf := time.Date(max(2023, created.Year()+1)+int(v.conf), created.Month(), created.Day(), 0, 0, 0, 0, time.UTC)
	b = append(b, `,"confirmation_statement":{"last_made_up_to":"`...)
	b = appendDate(b, conf)
	b = append(b, `","next_due":"`...)
	b = appendDate(b, conf.AddDate(1, 0, 14))
	b = append(b, `","next_made_up_to":"`...)
	b = appendDate(b, conf.AddDate(1, 0, 0))
	b = append(b, `","overdue":false}`...)
	if v.status == stDissolved {
		b = append(b, `,"date_of_cessation":"`...)
		b = appendDate(b, day(int64(v.orig)))
		b = append(b, '"')
	}
	b = append(b, `,"date_of_creation":"`...)
	b = appendDate(b, created)
	b = append(b, `","etag":"`...)
	b = append(b, s.etag(ci, v.rev)...)
	b = append(b, `","has_charges":`...)
	b = strconv.AppendBool(b, (h>>52)%4 == 0)
	b = append(b, `,"has_insolvency_history":`...)
	b = strconv.AppendBool(b, v.status == stLiquidation || v.status == stAdministration)
	b = append(b, `,"jurisdiction":"`...)
	b = append(b, juris[st.juris]...)
	b = append(b, `","links":{"self":"/company/`...)
	b = append(b, num...)
	b = append(b, `","filing_history":"/company/`...)
	b = append(b, num...)
	b = append(b, `/filing-history","officers":"/company/`...)
	b = append(b, num...)
	b = append(b, `/officers"}`...)
	if v.name > 0 {
		b = append(b, `,"previous_company_names":[`...)
		for k := int(v.name) - 1; k >= 0 && k >= int(v.name)-3; k-- {
			if k != int(v.name)-1 {
				b = append(b, ',')
			}
			ceased := created.AddDate(1+k, 0, 0)
			b = append(b, `{"ceased_on":"`...)
			b = appendDate(b, ceased)
			b = append(b, `","effective_from":"`...)
			if k == 0 {
				b = appendDate(b, created)
			} else {
				b = appendDate(b, created.AddDate(k, 0, 0))
			}
			b = append(b, `","name":`...)
			b = appendString(b, s.companyName(ci, uint16(k)))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	// registered office address
	ar := rng{s: h4(s.seed, tagAddr, uint64(ci), uint64(v.addr))}
	tw := pick(&ar, towns[st.juris])
	b = append(b, `,"registered_office_address":{"address_line_1":"`...)
	b = strconv.AppendInt(b, int64(1+ar.intn(200)), 10)
	b = append(b, ' ')
	b = append(b, pick(&ar, streets)...)
	b = append(b, '"')
	if ar.intn(3) == 0 {
		b = append(b, `,"address_line_2":"`...)
		b = append(b, pick(&ar, line2s)...)
		b = append(b, '"')
	}
	b = append(b, `,"country":"`...)
	b = append(b, countries[st.juris]...)
	b = append(b, `","locality":"`...)
	b = append(b, tw.town...)
	b = append(b, `","postal_code":"`...)
	b = append(b, tw.pc...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(1+ar.intn(9)), 10)
	b = append(b, byte('A'+ar.intn(26)), byte('A'+ar.intn(26)), '"')
	if tw.region != "" {
		b = append(b, `,"region":"`...)
		b = append(b, tw.region...)
		b = append(b, '"')
	}
	b = append(b, `},"sic_codes":[`...)
	sr := rng{s: h4(s.seed, tagSIC, uint64(ci), uint64(v.sic))}
	first := sr.intn(len(sicCodes))
	b = append(b, '"')
	b = append(b, sicCodes[first]...)
	b = append(b, '"')
	if sr.intn(2) == 0 {
		b = append(b, `,"`...)
		b = append(b, sicCodes[(first+1+sr.intn(len(sicCodes)-1))%len(sicCodes)]...)
		b = append(b, '"')
	}
	b = append(b, `],"type":"`...)
	b = append(b, types[st.typ]...)
	b = append(b, '"')
	if (h>>56)%5 == 0 {
		// Members chwatch does not know, as the real service adds them.
		b = append(b, `,"undeliverable_registered_office_address":false,"registered_office_is_in_dispute":false`...)
	}
	return append(b, '}')
}

// appendDate appends t as YYYY-MM-DD (time.DateOnly, without the layout parser).
func appendDate(b []byte, t time.Time) []byte {
	y, m, d := t.Date()
	b = strconv.AppendInt(b, int64(y), 10)
	b = append(b, '-')
	b = appendInt2(b, int(m))
	b = append(b, '-')
	return appendInt2(b, d)
}

// appendDateTime appends t as published_at: YYYY-MM-DDTHH:MM:SS, no zone, no fraction.
func appendDateTime(b []byte, t time.Time) []byte {
	b = appendDate(b, t)
	h, mi, sec := t.Clock()
	b = append(b, 'T')
	b = appendInt2(b, h)
	b = append(b, ':')
	b = appendInt2(b, mi)
	b = append(b, ':')
	return appendInt2(b, sec)
}

func appendInt2(b []byte, n int) []byte {
	if n < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(n), 10)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexd[r>>4], hexd[r&15])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// absurdLine is line (an event line from appendLine) with the largest
// timepoint and an unknown event type: the corrupt line Faults.AbsurdEvery
// injects.
func absurdLine(line []byte) []byte {
	i := bytes.LastIndex(line, []byte(`"event":{"timepoint":`))
	if i < 0 {
		return line
	}
	head := i + len(`"event":{"timepoint":`)
	j := head
	for j < len(line) && line[j] >= '0' && line[j] <= '9' {
		j++
	}
	out := make([]byte, 0, len(line)+32)
	out = append(out, line[:head]...)
	out = strconv.AppendInt(out, math.MaxInt64, 10)
	rest := bytes.Replace(line[j:], []byte(`"type":"changed"`), []byte(`"type":"sim_absurd"`), 1)
	rest = bytes.Replace(rest, []byte(`"type":"deleted"`), []byte(`"type":"sim_absurd"`), 1)
	return append(out, rest...)
}

// garbage lines injected by Faults.NotJSONEvery: none is JSON, none holds a timepoint.
var garbage = []string{
	"<html><body>upstream hiccup</body></html>\n",
	"{\"resource_kind\":\"company-profile\",\"resource_id\":\n",
	"\x00\x01binary noise\xff\xfe\n",
	"HTTP/1.1 200 OK\n",
}
