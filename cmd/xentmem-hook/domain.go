package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// defaultNamespace is the project's libvirt metadata namespace
// (docs/metadata.md).
const defaultNamespace = "https://xentmem.dev/xmlns/tmem/1"

// maxDomainXML bounds the domain document read from stdin.
const maxDomainXML = 4 << 20

// maxCowdDisks bounds the <cowd> elements of one domain.
const maxCowdDisks = 64

var (
	// errDomainXML is wrapped by errors that make the document unusable.
	errDomainXML = errors.New("bad domain XML")
	// errTmem is wrapped by errors in the tmem settings (weight, compress,
	// priority, reserve-mib); like the daemon, the hook then ignores all
	// of them.
	errTmem = errors.New("bad tmem metadata")
	// errCowd is wrapped by errors in the <cowd> disk declarations.
	errCowd = errors.New("bad cowd disk metadata")

	diskPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)
	nbdPattern  = regexp.MustCompile(`^/dev/nbd[0-9]{1,4}$`)
)

// domain is what the hook needs from a libvirt domain document.
type domain struct {
	Name      string
	ID        string // the running domain's id; "" before it runs
	MemoryKiB uint64 // <currentMemory>, else <memory>, in KiB (rounded up)

	Settings    settings
	SettingsErr error // the settings were invalid and are ignored
	Cowd        []cowdDisk
}

// settings are the tmem settings of docs/metadata.md. nil = not set.
type settings struct {
	Weight     *uint32
	Compress   *bool
	Priority   *int32
	ReserveMiB *uint64
}

// cowdDisk is one <tmem:cowd> element: a guest disk served by cowd.
type cowdDisk struct {
	Disk   string // guest device name, e.g. xvda
	Cow    string // the CoW file (dscow image or qcow2 overlay)
	Base   string // the base image; dscow only (created over it if missing)
	Format string // dscow (default) or qcow2
	NBD    string // /dev/nbdN, or "auto" (the default)
}

// MemoryMiB is the domain's memory in MiB, rounded up.
func (d *domain) MemoryMiB() uint64 { return (d.MemoryKiB + 1023) / 1024 }

// parseDomain reads a libvirt domain document (what a hook gets on stdin)
// and the project's metadata element in namespace ns. Errors in the
// settings are returned in SettingsErr (the domain is still usable);
// malformed XML, a document that is not a <domain>, or a bad <cowd>
// element are errors.
func parseDomain(r io.Reader, ns string) (*domain, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDomainXML+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %v", errDomainXML, err)
	}
	if len(data) > maxDomainXML {
		return nil, fmt.Errorf("%w: larger than %d bytes", errDomainXML, maxDomainXML)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	root, err := nextStart(dec)
	if err != nil {
		return nil, err
	}
	if root.Name.Local != "domain" || root.Name.Space != "" {
		return nil, fmt.Errorf("%w: root element <%s>, want <domain>", errDomainXML, root.Name.Local)
	}
	d := &domain{}
	for _, a := range root.Attr {
		if a.Name.Space == "" && a.Name.Local == "id" {
			d.ID = strings.TrimSpace(a.Value)
		}
	}
	var memory, current *uint64
	seenTmem := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errDomainXML, noEOF(err))
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if d.Name == "" {
				return nil, fmt.Errorf("%w: no <name>", errDomainXML)
			}
			switch {
			case current != nil:
				d.MemoryKiB = *current
			case memory != nil:
				d.MemoryKiB = *memory
			}
			return d, nil
		case xml.StartElement:
			switch {
			case t.Name.Space == "" && t.Name.Local == "name":
				s, err := elementText(dec)
				if err != nil {
					return nil, fmt.Errorf("%w: <name>: %v", errDomainXML, err)
				}
				d.Name = s
			case t.Name.Space == "" && (t.Name.Local == "memory" || t.Name.Local == "currentMemory"):
				kib, err := memoryKiB(dec, t)
				if err != nil {
					return nil, fmt.Errorf("%w: <%s>: %v", errDomainXML, t.Name.Local, err)
				}
				if t.Name.Local == "memory" {
					memory = &kib
				} else {
					current = &kib
				}
			case t.Name.Space == "" && t.Name.Local == "metadata":
				found, err := parseMetadata(dec, ns, d, seenTmem)
				if err != nil {
					return nil, err
				}
				seenTmem = seenTmem || found
			default:
				if err := dec.Skip(); err != nil {
					return nil, fmt.Errorf("%w: %v", errDomainXML, noEOF(err))
				}
			}
		}
	}
}

// nextStart returns the first start element.
func nextStart(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				return xml.StartElement{}, fmt.Errorf("%w: empty document", errDomainXML)
			}
			return xml.StartElement{}, fmt.Errorf("%w: %v", errDomainXML, err)
		}
		if t, ok := tok.(xml.StartElement); ok {
			return t, nil
		}
	}
}

// parseMetadata reads the children of <metadata>; the first <tmem> in
// namespace ns is the project's element (libvirt allows one per namespace).
func parseMetadata(dec *xml.Decoder, ns string, d *domain, seen bool) (bool, error) {
	found := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return false, fmt.Errorf("%w: %v", errDomainXML, noEOF(err))
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return found, nil
		case xml.StartElement:
			if t.Name.Space == ns && t.Name.Local == "tmem" && !seen && !found {
				found = true
				if err := parseTmem(dec, ns, d); err != nil {
					return false, err
				}
				continue
			}
			if err := dec.Skip(); err != nil {
				return false, fmt.Errorf("%w: %v", errDomainXML, noEOF(err))
			}
		}
	}
}

// parseTmem reads the body of the <tmem> element: settings (whose errors go
// to d.SettingsErr) and <cowd> disks (whose errors are returned).
func parseTmem(dec *xml.Decoder, ns string, d *domain) error {
	seen := map[string]bool{}
	disks := map[string]bool{}
	settingErr := func(err error) {
		if d.SettingsErr == nil {
			d.SettingsErr = err
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", errDomainXML, noEOF(err))
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if d.SettingsErr != nil {
				d.Settings = settings{}
			}
			return nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				settingErr(fmt.Errorf("%w: text %q directly in <tmem>", errTmem, clip(string(t))))
			}
		case xml.StartElement:
			if t.Name.Space != ns && t.Name.Space != "" {
				if err := dec.Skip(); err != nil {
					return fmt.Errorf("%w: %v", errDomainXML, noEOF(err))
				}
				continue
			}
			name := t.Name.Local
			switch name {
			case "cowd":
				c, err := parseCowd(t)
				if err == nil && disks[c.Disk] {
					err = fmt.Errorf("%w: disk %q declared twice", errCowd, c.Disk)
				}
				if err == nil && len(d.Cowd) >= maxCowdDisks {
					err = fmt.Errorf("%w: more than %d <cowd> elements", errCowd, maxCowdDisks)
				}
				if err != nil {
					return err
				}
				disks[c.Disk] = true
				d.Cowd = append(d.Cowd, c)
				if err := dec.Skip(); err != nil {
					return fmt.Errorf("%w: %v", errDomainXML, noEOF(err))
				}
			case "weight", "compress", "priority", "reserve-mib":
				text, err := elementText(dec)
				if err != nil {
					settingErr(fmt.Errorf("%w: <%s>: %v", errTmem, name, err))
					continue
				}
				if seen[name] {
					settingErr(fmt.Errorf("%w: <%s> given twice", errTmem, name))
					continue
				}
				seen[name] = true
				if err := d.Settings.set(name, text); err != nil {
					settingErr(fmt.Errorf("%w: <%s>%s</%s>: %v", errTmem, name, clip(text), name, err))
				}
			default:
				if err := dec.Skip(); err != nil {
					return fmt.Errorf("%w: %v", errDomainXML, noEOF(err))
				}
			}
		}
	}
}

// parseCowd checks the attributes of a <cowd> element. Unknown attributes
// are ignored, for forward compatibility.
func parseCowd(t xml.StartElement) (cowdDisk, error) {
	c := cowdDisk{Format: "dscow", NBD: "auto"}
	for _, a := range t.Attr {
		if a.Name.Space != "" {
			continue
		}
		v := strings.TrimSpace(a.Value)
		switch a.Name.Local {
		case "disk":
			c.Disk = v
		case "cow":
			c.Cow = v
		case "base":
			c.Base = v
		case "format":
			c.Format = v
		case "nbd":
			c.NBD = v
		}
	}
	bad := func(f string, a ...any) (cowdDisk, error) {
		return cowdDisk{}, fmt.Errorf("%w: <cowd disk=%q>: "+f, append([]any{errCowd, c.Disk}, a...)...)
	}
	switch {
	case !diskPattern.MatchString(c.Disk):
		return bad("disk: want a device name such as xvda")
	case c.Cow == "" || !filepath.IsAbs(c.Cow):
		return bad("cow %q: want an absolute path", c.Cow)
	case c.Base != "" && !filepath.IsAbs(c.Base):
		return bad("base %q: want an absolute path", c.Base)
	case c.Format != "dscow" && c.Format != "qcow2":
		return bad("format %q: want dscow or qcow2", c.Format)
	case c.NBD != "auto" && !nbdPattern.MatchString(c.NBD):
		return bad("nbd %q: want /dev/nbdN or auto", c.NBD)
	}
	return c, nil
}

// elementText returns the trimmed text of the element whose start tag was
// just read; child elements and empty values are errors.
func elementText(dec *xml.Decoder) (string, error) {
	var b strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", noEOF(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if b.Len()+len(t) > 1024 {
				return "", errors.New("value too long")
			}
			b.Write(t)
		case xml.StartElement:
			return "", fmt.Errorf("must hold text, found <%s>", t.Name.Local)
		case xml.EndElement:
			v := strings.TrimSpace(b.String())
			if v == "" {
				return "", errors.New("empty")
			}
			return v, nil
		}
	}
}

// set stores one setting, with the daemon's rules (docs/metadata.md).
func (s *settings) set(name, v string) error {
	switch name {
	case "weight":
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return numErr(err)
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
			return numErr(err)
		}
		p := int32(n)
		s.Priority = &p
	case "reserve-mib":
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return numErr(err)
		}
		if n > math.MaxUint64>>20 {
			return fmt.Errorf("above %d", uint64(math.MaxUint64>>20))
		}
		s.ReserveMiB = &n
	}
	return nil
}

// memoryKiB reads a <memory>/<currentMemory> value with libvirt's units
// (default KiB; k, M, G… are powers of 1024, KB, MB, GB… of 1000) and
// returns KiB, rounded up.
func memoryKiB(dec *xml.Decoder, t xml.StartElement) (uint64, error) {
	unit := "KiB"
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == "unit" {
			unit = strings.TrimSpace(a.Value)
		}
	}
	text, err := elementText(dec)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return 0, numErr(err)
	}
	mul, ok := memoryUnit(unit)
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	hi, lo := bits.Mul64(n, mul)
	if hi != 0 {
		return 0, errors.New("too large")
	}
	return lo/1024 + min(lo%1024, 1), nil
}

// memoryUnit returns the size of libvirt's scaled-integer unit u in bytes
// (as virScaleInteger reads it: b/byte/bytes; k, M, G, T, P, E alone or
// with "iB" are powers of 1024, with "B" powers of 1000; case-insensitive).
func memoryUnit(u string) (uint64, bool) {
	l := strings.ToLower(u)
	switch l {
	case "b", "byte", "bytes":
		return 1, true
	case "":
		return 0, false
	}
	exp := strings.IndexByte("kmgtpe", l[0]) + 1
	if exp == 0 {
		return 0, false
	}
	var base uint64
	switch l[1:] {
	case "", "ib":
		base = 1024
	case "b":
		base = 1000
	default:
		return 0, false
	}
	v := uint64(1)
	for range exp {
		v *= base
	}
	return v, true
}

func numErr(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func clip(s string) string {
	for i := range s {
		if i >= 32 {
			return s[:i] + "…"
		}
	}
	return s
}
