package sim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Handler serves GET /companies (the stream), GET /company/{n} and
// GET /company/{n}/officers.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /companies", s.serveStream)
	mux.HandleFunc("GET /company/{n}", s.rest(s.serveProfile))
	mux.HandleFunc("GET /company/{n}/officers", s.rest(s.serveOfficers))
	return mux
}

const notFound = `{"errors":[{"error":"company-profile-not-found","type":"ch:service"}]}`

// rest wraps a REST endpoint with auth and the shared fixed-window budget. Every
// answer carries the X-Ratelimit-* headers; a 401 does not spend budget.
func (s *Sim) rest(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		now := s.cfg.Now()
		ok := authorized(r, s.cfg.APIKey)
		s.rlMu.Lock()
		if !now.Before(s.rlEnd) {
			s.rlEnd = now.Add(s.cfg.APIRateWindow)
			s.rlCount = 0
		}
		if ok {
			s.rlCount++
		}
		count, end := s.rlCount, s.rlEnd
		s.rlMu.Unlock()
		limit := s.cfg.APIRateLimit
		hd := w.Header()
		hd.Set("X-Ratelimit-Limit", strconv.Itoa(limit))
		hd.Set("X-Ratelimit-Remain", strconv.Itoa(max(limit-count, 0)))
		hd.Set("X-Ratelimit-Reset", strconv.FormatInt(end.Unix(), 10))
		hd.Set("X-Ratelimit-Window", windowText(s.cfg.APIRateWindow))
		hd.Set("Date", now.UTC().Format(http.TimeFormat))
		switch {
		case !ok:
			writeJSONError(w, http.StatusUnauthorized, body401)
		case count > limit:
			writeJSONError(w, http.StatusTooManyRequests, `{"error":"Too Many Requests","type":"ch:service"}`)
		default:
			h(w, r)
		}
	}
}

func windowText(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// lookup finds a live (not deleted) company and its current version.
func (s *Sim) lookup(n string) (uint32, version, bool) {
	ci, ok := s.byNum[n]
	if !ok {
		return 0, version{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	c := &s.cos[ci]
	return ci, c.cur, !c.deleted
}

func (s *Sim) serveProfile(w http.ResponseWriter, r *http.Request) {
	ci, v, ok := s.lookup(r.PathValue("n"))
	if !ok {
		writeJSONError(w, http.StatusNotFound, notFound)
		return
	}
	b := s.appendData(make([]byte, 0, 2048), ci, v, 0)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// Officer list JSON, as GET /company/{n}/officers answers it.
type officerList struct {
	ActiveCount   int    `json:"active_count"`
	ResignedCount int    `json:"resigned_count"`
	InactiveCount int    `json:"inactive_count"`
	TotalResults  int    `json:"total_results"`
	ItemsPerPage  int    `json:"items_per_page"`
	StartIndex    int    `json:"start_index"`
	Kind          string `json:"kind"`
	Etag          string `json:"etag"`
	Links         struct {
		Self string `json:"self"`
	} `json:"links"`
	Items []officer `json:"items"`
}

type officer struct {
	Name               string       `json:"name"`
	OfficerRole        string       `json:"officer_role"`
	AppointedOn        string       `json:"appointed_on"`
	ResignedOn         string       `json:"resigned_on,omitempty"`
	Nationality        string       `json:"nationality,omitempty"`
	Occupation         string       `json:"occupation,omitempty"`
	CountryOfResidence string       `json:"country_of_residence,omitempty"`
	DateOfBirth        *birth       `json:"date_of_birth,omitempty"`
	Address            officerAddr  `json:"address"`
	Links              officerLinks `json:"links"`
}

type birth struct {
	Month int `json:"month"`
	Year  int `json:"year"`
}

type officerAddr struct {
	Premises     string `json:"premises,omitempty"`
	AddressLine1 string `json:"address_line_1"`
	AddressLine2 string `json:"address_line_2,omitempty"`
	Locality     string `json:"locality"`
	Region       string `json:"region,omitempty"`
	PostalCode   string `json:"postal_code"`
	Country      string `json:"country"`
}

type officerLinks struct {
	Self    string `json:"self"`
	Officer struct {
		Appointments string `json:"appointments"`
	} `json:"officer"`
}

// officerCount is how many officer items company ci has: none for about 3% (their
// officers list answers 404), 101-250 for about 1%, else 1-40 (mostly few).
func (s *Sim) officerCount(ci uint32) int {
	r := rng{s: h3(s.seed, tagOfficers, uint64(ci))}
	switch u := r.intn(100); {
	case u < 3:
		return 0
	case u < 4:
		return 101 + r.intn(150)
	case u < 70:
		return 1 + r.intn(4)
	default:
		return 1 + r.intn(40)
	}
}

// officers builds company ci's full officer list. When it has at least two items and
// its hash says so (about two thirds), items 0 and 1 are one person holding two roles:
// director and secretary, the same officer id, two appointment ids.
func (s *Sim) officers(ci uint32) []officer {
	n := s.officerCount(ci)
	if n == 0 {
		return nil
	}
	st := &s.statics[ci]
	num := st.num()
	base := rng{s: h4(s.seed, tagOfficers, uint64(ci), 1)}
	twoRoles := n >= 2 && st.typ != tyLLP && base.intn(3) != 0
	items := make([]officer, 0, n)
	var resigned []officer
	for j := range n {
		person := j
		if twoRoles && j == 1 {
			person = 0
		}
		pr := rng{s: h4(s.seed, tagOfficers, uint64(ci), uint64(1000+person))}
		ar := rng{s: h4(s.seed, tagOfficers, uint64(ci), uint64(100000+j))}
		o := officer{
			Name:        pick(&pr, surnames) + ", " + pick(&pr, forenames) + " " + pick(&pr, forenames),
			Nationality: pick(&pr, []string{"British", "British", "Irish", "Indian", "Polish", "French"}),
		}
		occ := pick(&pr, []string{"Director", "Company Director", "Accountant", "Consultant", "Engineer", "Retired", "Chef"})
		dob := &birth{Month: 1 + pr.intn(12), Year: 1940 + pr.intn(65)}
		tw := pick(&pr, towns[st.juris])
		o.CountryOfResidence = pick(&pr, []string{"England", "United Kingdom", "Scotland", "Northern Ireland", "Wales"})
		o.Address = officerAddr{
			Premises:     strconv.Itoa(1 + pr.intn(120)),
			AddressLine1: pick(&pr, streets),
			Locality:     tw.town,
			Region:       tw.region,
			PostalCode:   tw.pc + " " + strconv.Itoa(1+pr.intn(9)) + string(rune('A'+pr.intn(26))) + string(rune('A'+pr.intn(26))),
			Country:      countries[st.juris],
		}
		switch {
		case st.typ == tyLLP && j < 2:
			o.OfficerRole = "llp-designated-member"
		case st.typ == tyLLP:
			o.OfficerRole = "llp-member"
		case twoRoles && j == 1, !twoRoles && j > 0 && ar.intn(8) == 0:
			o.OfficerRole = "secretary"
		default:
			o.OfficerRole = "director"
		}
		if o.OfficerRole == "secretary" {
			o.CountryOfResidence = "" // secretaries show neither occupation nor birth date
		} else {
			o.Occupation, o.DateOfBirth = occ, dob
		}
		appointed := time.Date(2000+ar.intn(24), time.Month(1+ar.intn(12)), 1+ar.intn(28), 0, 0, 0, 0, time.UTC)
		o.AppointedOn = appointed.Format(time.DateOnly)
		if j >= 2 && ar.intn(4) == 0 {
			o.ResignedOn = appointed.AddDate(1+ar.intn(5), ar.intn(12), 0).Format(time.DateOnly)
		}
		o.Links.Self = "/company/" + num + "/appointments/" + idString(h4(s.seed, tagOfficers, uint64(ci), uint64(200000+j)))
		o.Links.Officer.Appointments = "/officers/" + idString(h4(s.seed, tagOfficers, uint64(ci), uint64(300000+person))) + "/appointments"
		if o.ResignedOn != "" {
			resigned = append(resigned, o)
		} else {
			items = append(items, o)
		}
	}
	return append(items, resigned...)
}

// idString is a 27-character URL-safe id, like the real appointment and officer ids.
func idString(h uint64) string {
	var raw [20]byte
	for i := 0; i < 20; i += 8 {
		h = mix(h)
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], h)
		copy(raw[i:], w[:])
	}
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func (s *Sim) serveOfficers(w http.ResponseWriter, r *http.Request) {
	ci, _, ok := s.lookup(r.PathValue("n"))
	var all []officer
	if ok {
		all = s.officers(ci)
	}
	if len(all) == 0 {
		writeJSONError(w, http.StatusNotFound, `{"errors":[{"error":"not-found","type":"ch:service"}]}`)
		return
	}
	q := r.URL.Query()
	per, start := 35, 0
	if v, err := strconv.Atoi(q.Get("items_per_page")); err == nil && v > 0 {
		per = min(v, 100)
	}
	if v, err := strconv.Atoi(q.Get("start_index")); err == nil && v > 0 {
		start = v
	}
	l := officerList{
		TotalResults: len(all),
		ItemsPerPage: per,
		StartIndex:   start,
		Kind:         "officer-list",
		Etag:         s.etag(ci, 0xffffffff),
		Items:        []officer{},
	}
	l.Links.Self = "/company/" + r.PathValue("n") + "/officers"
	for _, o := range all {
		if o.ResignedOn != "" {
			l.ResignedCount++
		} else {
			l.ActiveCount++
		}
	}
	if start < len(all) {
		l.Items = all[start:min(start+per, len(all))]
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(l)
}
