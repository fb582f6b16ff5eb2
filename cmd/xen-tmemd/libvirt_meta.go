package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// defaultTmemNamespace is the XML namespace of the per-domain tmem settings
// in libvirt domain metadata. docs/metadata.md describes the format.
const defaultTmemNamespace = "https://xentmem.dev/xmlns/tmem/1"

// maxTmemMetadata bounds the metadata document we parse.
const maxTmemMetadata = 64 << 10

// maxReserveMiB keeps reserve-mib convertible to bytes in a uint64.
const maxReserveMiB = math.MaxUint64 >> 20

// errTmemMetadata is wrapped by every metadata parse error.
var errTmemMetadata = errors.New("bad tmem metadata")

// TmemSettings are the per-domain tmem settings a domain's libvirt metadata
// may carry. A nil field was not set and leaves the daemon's default.
type TmemSettings struct {
	Weight     *uint32 // <weight>: relative share of tmem, any uint32
	Compress   *bool   // <compress>: on/off (also yes/no, true/false, 1/0)
	Priority   *int    // <priority>: signed 32-bit integer, higher is more important
	ReserveMiB *uint64 // <reserve-mib>: memory to free before the domain starts
}

// IsZero reports whether no setting is present.
func (s TmemSettings) IsZero() bool {
	return s.Weight == nil && s.Compress == nil && s.Priority == nil && s.ReserveMiB == nil
}

// parseTmemMetadata parses tmem settings for namespace ns from one of:
//
//   - what virDomainGetMetadata(ELEMENT, ns) returns: a <tmem> root element
//     whose namespace libvirt strips, so no namespace is accepted at the root;
//   - the element as written into the domain XML,
//     <p:tmem xmlns:p="NS">…</p:tmem>;
//   - a whole <metadata> or <domain> document (as a libvirt hook sees it),
//     where the first <tmem> element in namespace ns is used.
//
// Children in namespace ns (or in none) named weight, compress, priority and
// reserve-mib are read; other elements are ignored, for forward
// compatibility. A setting given twice, empty, holding markup, or out of
// range is an error wrapping [errTmemMetadata], and no settings are returned.
func parseTmemMetadata(data []byte, ns string) (TmemSettings, error) {
	if len(data) > maxTmemMetadata {
		return TmemSettings{}, fmt.Errorf("%w: %d bytes, at most %d", errTmemMetadata, len(data), maxTmemMetadata)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return TmemSettings{}, fmt.Errorf("%w: no <tmem> element in namespace %q", errTmemMetadata, ns)
		}
		if err != nil {
			return TmemSettings{}, fmt.Errorf("%w: %v", errTmemMetadata, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "tmem" && (t.Name.Space == ns || depth == 0 && t.Name.Space == "") {
				return parseTmemBody(dec, ns)
			}
			if depth == 0 && (t.Name.Space != "" || t.Name.Local != "domain" && t.Name.Local != "metadata") {
				return TmemSettings{}, fmt.Errorf("%w: root element <%s>, want <tmem>, <metadata> or <domain>",
					errTmemMetadata, t.Name.Local)
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
}

// parseTmemBody reads the children of a <tmem> element up to its end tag.
func parseTmemBody(dec *xml.Decoder, ns string) (TmemSettings, error) {
	var s TmemSettings
	seen := map[string]bool{}
	for {
		tok, err := dec.Token()
		if err != nil {
			return TmemSettings{}, fmt.Errorf("%w: %v", errTmemMetadata, tmemNoEOF(err))
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return s, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return TmemSettings{}, fmt.Errorf("%w: text %q directly in <tmem>", errTmemMetadata, tmemClip(string(t)))
			}
		case xml.StartElement:
			name := t.Name.Local
			known := name == "weight" || name == "compress" || name == "priority" || name == "reserve-mib"
			if !known || t.Name.Space != ns && t.Name.Space != "" {
				if err := dec.Skip(); err != nil {
					return TmemSettings{}, fmt.Errorf("%w: %v", errTmemMetadata, tmemNoEOF(err))
				}
				continue
			}
			if seen[name] {
				return TmemSettings{}, fmt.Errorf("%w: <%s> given twice", errTmemMetadata, name)
			}
			seen[name] = true
			text, err := tmemElementText(dec, name)
			if err != nil {
				return TmemSettings{}, err
			}
			if err := s.set(name, text); err != nil {
				return TmemSettings{}, fmt.Errorf("%w: <%s>%s</%s>: %v", errTmemMetadata, name, tmemClip(text), name, err)
			}
		}
	}
}

// tmemElementText returns the trimmed text of the element whose start tag was
// just read, rejecting child elements.
func tmemElementText(dec *xml.Decoder, name string) (string, error) {
	var b strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", fmt.Errorf("%w: <%s>: %v", errTmemMetadata, name, tmemNoEOF(err))
		}
		switch t := tok.(type) {
		case xml.CharData:
			if b.Len()+len(t) > 64 {
				return "", fmt.Errorf("%w: <%s> value too long", errTmemMetadata, name)
			}
			b.Write(t)
		case xml.StartElement:
			return "", fmt.Errorf("%w: <%s> must hold text, found <%s>", errTmemMetadata, name, t.Name.Local)
		case xml.EndElement:
			v := strings.TrimSpace(b.String())
			if v == "" {
				return "", fmt.Errorf("%w: <%s> is empty", errTmemMetadata, name)
			}
			return v, nil
		}
	}
}

// set stores one parsed setting.
func (s *TmemSettings) set(name, v string) error {
	switch name {
	case "weight":
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return tmemNumErr(err)
		}
		w := uint32(n)
		s.Weight = &w
	case "compress":
		var c bool
		switch strings.ToLower(v) {
		case "on", "yes", "true", "1":
			c = true
		case "off", "no", "false", "0":
		default:
			return errors.New("want on or off")
		}
		s.Compress = &c
	case "priority":
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return tmemNumErr(err)
		}
		p := int(n)
		s.Priority = &p
	case "reserve-mib":
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return tmemNumErr(err)
		}
		if n > maxReserveMiB {
			return fmt.Errorf("above %d", uint64(maxReserveMiB))
		}
		s.ReserveMiB = &n
	}
	return nil
}

// tmemNumErr drops strconv's repetition of the input from its error.
func tmemNumErr(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

func tmemNoEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func tmemClip(s string) string {
	for i := range s { // cut on a rune boundary
		if i >= 32 {
			return s[:i] + "…"
		}
	}
	return s
}

// formatTmemMetadata renders s as the element to store in a domain's
// <metadata> (or to pass to virsh metadata --set), in namespace ns with the
// given prefix. An empty prefix uses a default namespace declaration.
func formatTmemMetadata(s TmemSettings, ns, prefix string) string {
	var b strings.Builder
	p := ""
	if prefix != "" {
		p = prefix + ":"
		fmt.Fprintf(&b, "<%stmem xmlns:%s=", p, prefix)
	} else {
		b.WriteString("<tmem xmlns=")
	}
	b.WriteString(`"`)
	_ = xml.EscapeText(&b, []byte(ns)) // a strings.Builder never fails
	b.WriteString(`">`)
	elem := func(name, v string) { fmt.Fprintf(&b, "<%s%s>%s</%s%s>", p, name, v, p, name) }
	if s.Weight != nil {
		elem("weight", strconv.FormatUint(uint64(*s.Weight), 10))
	}
	if s.Compress != nil {
		v := "off"
		if *s.Compress {
			v = "on"
		}
		elem("compress", v)
	}
	if s.Priority != nil {
		elem("priority", strconv.Itoa(*s.Priority))
	}
	if s.ReserveMiB != nil {
		elem("reserve-mib", strconv.FormatUint(*s.ReserveMiB, 10))
	}
	fmt.Fprintf(&b, "</%stmem>", p)
	return b.String()
}
