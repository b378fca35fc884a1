package sim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// tagPSCs keeps the PSC lists' hash stream apart from the others (a value
// outside gen.go's iota range).
const tagPSCs uint64 = 0x505343

// PSC list JSON, as GET /company/{n}/persons-with-significant-control
// answers it.
type pscList struct {
	ActiveCount  int    `json:"active_count"`
	CeasedCount  int    `json:"ceased_count"`
	TotalResults int    `json:"total_results"`
	ItemsPerPage int    `json:"items_per_page"`
	StartIndex   int    `json:"start_index"`
	Items        []psc  `json:"items"`
	Links        pscSet `json:"links"`
}

type pscSet struct {
	Self       string `json:"self"`
	Statements string `json:"persons_with_significant_control_statements,omitempty"`
}

type psc struct {
	Kind               string          `json:"kind"`
	Name               string          `json:"name,omitempty"`
	NameElements       *pscName        `json:"name_elements,omitempty"`
	Description        string          `json:"description,omitempty"` // super-secure: what is withheld
	NaturesOfControl   []string        `json:"natures_of_control,omitempty"`
	NotifiedOn         string          `json:"notified_on,omitempty"`
	CeasedOn           string          `json:"ceased_on,omitempty"`
	Ceased             bool            `json:"ceased,omitempty"`
	Nationality        string          `json:"nationality,omitempty"`
	CountryOfResidence string          `json:"country_of_residence,omitempty"`
	DateOfBirth        *birth          `json:"date_of_birth,omitempty"`
	Address            *officerAddr    `json:"address,omitempty"`
	Identification     *identification `json:"identification,omitempty"`
	Etag               string          `json:"etag"`
	Links              struct {
		Self string `json:"self"`
	} `json:"links"`
}

type pscName struct {
	Title      string `json:"title,omitempty"`
	Forename   string `json:"forename"`
	MiddleName string `json:"middle_name,omitempty"`
	Surname    string `json:"surname"`
}

type identification struct {
	LegalAuthority     string `json:"legal_authority"`
	LegalForm          string `json:"legal_form"`
	PlaceRegistered    string `json:"place_registered,omitempty"`
	RegistrationNumber string `json:"registration_number,omitempty"`
	CountryRegistered  string `json:"country_registered,omitempty"`
}

// pscKinds are the kinds of PSC item, with the links.self segment of each.
var pscKinds = []struct{ kind, segment string }{
	{"individual-person-with-significant-control", "individual"},
	{"corporate-entity-person-with-significant-control", "corporate-entity"},
	{"legal-person-person-with-significant-control", "legal-person"},
	{"super-secure-person-with-significant-control", "super-secure"},
	{"individual-beneficial-owner", "individual-beneficial-owner"},
	{"corporate-entity-beneficial-owner", "corporate-entity-beneficial-owner"},
}

var natures = []string{
	"ownership-of-shares-25-to-50-percent", "ownership-of-shares-50-to-75-percent", "ownership-of-shares-75-to-100-percent",
	"voting-rights-25-to-50-percent", "voting-rights-50-to-75-percent", "voting-rights-75-to-100-percent",
	"right-to-appoint-and-remove-directors", "significant-influence-or-control",
}

// pscCount is how many PSC items company ci has: none for about 10% (an
// empty 200), 101-180 for about 2% (several pages), else 1-6 (mostly 1-2).
func (s *Sim) pscCount(ci uint32) int {
	r := rng{s: h3(s.seed, tagPSCs, uint64(ci))}
	switch u := r.intn(100); {
	case u < 10:
		return 0
	case u < 12:
		return 101 + r.intn(80)
	case u < 75:
		return 1 + r.intn(2)
	default:
		return 1 + r.intn(6)
	}
}

// pscs builds company ci's full PSC list: active ones first, then ceased
// ones (about a fifth), as the register lists them.
func (s *Sim) pscs(ci uint32) []psc {
	n := s.pscCount(ci)
	if n == 0 {
		return nil
	}
	st := &s.statics[ci]
	num := st.num()
	var active, ceased []psc
	for j := range n {
		r := rng{s: h4(s.seed, tagPSCs, uint64(ci), uint64(1+j))}
		k := 0 // individual
		switch u := r.intn(100); {
		case u < 15:
			k = 1
		case u < 18:
			k = 2
		case u < 20:
			k = 3
		case u < 21:
			k = 4
		case u < 22:
			k = 5
		}
		p := psc{Kind: pscKinds[k].kind, Etag: s.etag(ci, uint32(0x50000000+j))}
		notified := time.Date(2016+r.intn(9), time.Month(1+r.intn(12)), 1+r.intn(28), 0, 0, 0, 0, time.UTC)
		tw := pick(&r, towns[st.juris])
		addr := &officerAddr{
			Premises: strconv.Itoa(1 + r.intn(120)), AddressLine1: pick(&r, streets), Locality: tw.town, Region: tw.region,
			PostalCode: tw.pc + " " + strconv.Itoa(1+r.intn(9)) + string(rune('A'+r.intn(26))) + string(rune('A'+r.intn(26))),
			Country:    countries[st.juris],
		}
		switch k {
		case 0, 4:
			title := pick(&r, []string{"Mr", "Mrs", "Ms", "Dr", ""})
			ne := &pscName{Title: title, Forename: pick(&r, forenames), Surname: titleCase(pick(&r, surnames))}
			if r.intn(2) == 0 {
				ne.MiddleName = pick(&r, forenames)
			}
			p.NameElements = ne
			p.Name = strings.Join(strings.Fields(strings.Join([]string{ne.Title, ne.Forename, ne.MiddleName, ne.Surname}, " ")), " ")
			p.Nationality = pick(&r, []string{"British", "British", "Irish", "Indian", "Polish", "French"})
			p.CountryOfResidence = pick(&r, []string{"England", "United Kingdom", "Scotland", "Northern Ireland", "Wales"})
			p.DateOfBirth = &birth{Month: 1 + r.intn(12), Year: 1940 + r.intn(65)}
			p.Address = addr
		case 1, 5:
			p.Name = titleCase(pick(&r, surnames)) + " Holdings Limited"
			p.Identification = &identification{LegalAuthority: "Companies Act 2006", LegalForm: "Private Limited Company",
				PlaceRegistered: "Companies House", RegistrationNumber: strconv.Itoa(10_000_000 + r.intn(9_000_000)), CountryRegistered: "England"}
			p.Address = addr
		case 2:
			p.Name = "The " + titleCase(pick(&r, surnames)) + " Trust"
			p.Identification = &identification{LegalAuthority: "Trustee Act 2000", LegalForm: "Trust"}
			p.Address = addr
		case 3:
			p.Description = "super-secure-persons-with-significant-control"
		}
		if k != 3 {
			p.NotifiedOn = notified.Format(time.DateOnly)
			for _, i := range []int{r.intn(len(natures)), r.intn(len(natures))} {
				if !slices.Contains(p.NaturesOfControl, natures[i]) {
					p.NaturesOfControl = append(p.NaturesOfControl, natures[i])
				}
			}
		}
		p.Links.Self = "/company/" + num + "/persons-with-significant-control/" + pscKinds[k].segment + "/" +
			idString(h4(s.seed, tagPSCs, uint64(ci), uint64(100000+j)))
		if k != 3 && r.intn(5) == 0 {
			p.CeasedOn = notified.AddDate(1+r.intn(4), r.intn(12), 0).Format(time.DateOnly)
			p.Ceased = true
			ceased = append(ceased, p)
		} else {
			active = append(active, p)
		}
	}
	return append(active, ceased...)
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return s[:1] + strings.ToLower(s[1:])
}

// servePSCs answers a PSC list page: 404 for a company it does not hold
// (or deleted), an empty 200 for one without PSCs, pages sized and
// overlapped as the officers list's are (APIFaults.PageCap, OverlapPages).
func (s *Sim) servePSCs(w http.ResponseWriter, r *http.Request) {
	num := r.PathValue("n")
	ci, _, ok := s.lookup(num)
	if !ok {
		writeJSONError(w, http.StatusNotFound, notFound)
		return
	}
	all := s.pscs(ci)
	q := r.URL.Query()
	per, start := 25, 0 // the list's default page
	if v, err := strconv.Atoi(q.Get("items_per_page")); err == nil && v > 0 {
		per = min(v, s.cfg.API.PageCap)
	}
	if v, err := strconv.Atoi(q.Get("start_index")); err == nil && v > 0 {
		start = v
	}
	l := pscList{TotalResults: len(all), ItemsPerPage: per, StartIndex: start, Items: []psc{}}
	l.Links.Self = "/company/" + num + "/persons-with-significant-control"
	l.Links.Statements = l.Links.Self + "-statements"
	for _, p := range all {
		if p.CeasedOn != "" {
			l.CeasedCount++
		} else {
			l.ActiveCount++
		}
	}
	if start < len(all) {
		l.Items = all[start:min(start+per, len(all))]
	}
	if s.cfg.API.OverlapPages && start > 0 && start <= len(all) {
		l.Items = append([]psc{all[start-1]}, l.Items...)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(l)
}

// PSCList is the simulator's truth about a company's PSC list: what a
// client that reads every page must end up with.
type PSCList struct {
	Found bool       // false: the list answers 404 (an unknown or deleted company)
	PSCs  []PSCTruth // every item, in list order (active first, then ceased)
}

// PSCTruth is one item of a PSC list.
type PSCTruth struct {
	ID               string // the last segment of links.self
	Kind             string
	Name             string // "" for a super-secure PSC
	NaturesOfControl []string
	NotifiedOn       string
	CeasedOn         string // "" while the control lasts
}

// PSCs returns the truth about company number's PSC list now.
func (s *Sim) PSCs(number string) PSCList {
	ci, _, ok := s.lookup(number)
	if !ok {
		return PSCList{}
	}
	l := PSCList{Found: true}
	for _, p := range s.pscs(ci) {
		l.PSCs = append(l.PSCs, PSCTruth{
			ID: p.Links.Self[strings.LastIndexByte(p.Links.Self, '/')+1:], Kind: p.Kind, Name: p.Name,
			NaturesOfControl: p.NaturesOfControl, NotifiedOn: p.NotifiedOn, CeasedOn: p.CeasedOn,
		})
	}
	return l
}
