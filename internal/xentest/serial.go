package xentest

import (
	"regexp"
	"strconv"
	"strings"
)

// Lines splits a serial log into lines without the "\r" Xen's UART adds.
func Lines(log string) []string {
	return strings.Split(strings.ReplaceAll(log, "\r", ""), "\n")
}

var kernelLine = regexp.MustCompile(`^\[ *[0-9]+\.[0-9]+\] `)

// GuestOutput reports whether a console line came from a dom0 program:
// neither Xen's own "(XEN) " lines nor kernel printk lines.
func GuestOutput(line string) bool {
	return !strings.HasPrefix(line, "(XEN)") && !kernelLine.MatchString(line)
}

// Section returns the guest output lines strictly between the first line
// equal to begin and the next line starting with endPrefix, and that end
// line. ok is false when either is missing.
func Section(log, begin, endPrefix string) (body []string, end string, ok bool) {
	in := false
	for _, l := range Lines(log) {
		switch {
		case !in && l == begin:
			in = true
		case in && strings.HasPrefix(l, endPrefix):
			return body, l, true
		case in && GuestOutput(l):
			body = append(body, l)
		}
	}
	return body, "", false
}

// SentinelInt returns the integer value of key=N in a sentinel line such
// as "@@TEST hypercall exit=0@@".
func SentinelInt(line, key string) (int, bool) {
	for _, f := range strings.Fields(strings.Trim(line, "@")) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(v, "@@"))
			return n, err == nil
		}
	}
	return 0, false
}

// XenConsole holds facts Xen printed on its console.
type XenConsole struct {
	Version     string // "4.17.7" from "Xen version 4.17.7 (Debian ...)"
	CommandLine string // "Command line: ..."
	SystemRAMKB int64  // "System RAM: 2047MB (2096636kB)": total_pages*4
	CPUKHz      int64  // "Detected 1999.999 MHz processor."
	// Heaps are the free heap sizes in KiB printed by each debug key 'm'
	// ("Physical memory information:"), the sum of the "heap[NN]" zones,
	// which is what XEN_SYSCTL_physinfo reports as free_pages*4. Xen heap
	// (zone 0) is not part of it.
	Heaps []Mark
	// Dom0 are dom0's nr_pages and max_pages printed by each debug key 'q'.
	Dom0 []Dom0Pages
}

// Mark is a value and the index of the log line where it was printed.
type Mark struct {
	Line int
	KB   int64
}

// Dom0Pages is dom0's page counts from debug key 'q'.
type Dom0Pages struct {
	Line              int
	NrPages, MaxPages int64
}

var (
	reVersion = regexp.MustCompile(`^\(XEN\) Xen version ([0-9][^ ]*) `)
	reCmdline = regexp.MustCompile(`^\(XEN\) Command line: (.*)$`)
	reRAM     = regexp.MustCompile(`^\(XEN\) System RAM: [0-9]+MB \(([0-9]+)kB\)`)
	reMHz     = regexp.MustCompile(`^\(XEN\) Detected ([0-9]+)\.([0-9]{3}) MHz processor`)
	reHeap    = regexp.MustCompile(`^\(XEN\)\s+heap\[[0-9]+\]: ([0-9]+)kB free`)
	reDomInfo = regexp.MustCompile(`^\(XEN\) General information for domain ([0-9]+):`)
	reDomPage = regexp.MustCompile(`^\(XEN\)\s+nr_pages=([0-9]+) .*max_pages=([0-9]+)`)
)

// ParseXenConsole extracts [XenConsole] facts from a serial log.
func ParseXenConsole(log string) XenConsole {
	var c XenConsole
	heap, dom := -1, -1
	for i, l := range Lines(log) {
		if m := reVersion.FindStringSubmatch(l); m != nil && c.Version == "" {
			c.Version = m[1]
		}
		if m := reCmdline.FindStringSubmatch(l); m != nil && c.CommandLine == "" {
			c.CommandLine = strings.TrimSpace(m[1])
		}
		if m := reRAM.FindStringSubmatch(l); m != nil {
			c.SystemRAMKB, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if m := reMHz.FindStringSubmatch(l); m != nil {
			mhz, _ := strconv.ParseInt(m[1], 10, 64)
			frac, _ := strconv.ParseInt(m[2], 10, 64)
			c.CPUKHz = mhz*1000 + frac
		}
		if strings.HasPrefix(l, "(XEN) Physical memory information:") {
			c.Heaps = append(c.Heaps, Mark{Line: i})
			heap = len(c.Heaps) - 1
		}
		if m := reHeap.FindStringSubmatch(l); m != nil && heap >= 0 {
			kb, _ := strconv.ParseInt(m[1], 10, 64)
			c.Heaps[heap].KB += kb
		}
		if m := reDomInfo.FindStringSubmatch(l); m != nil {
			dom = -1
			if m[1] == "0" {
				c.Dom0 = append(c.Dom0, Dom0Pages{Line: i})
				dom = len(c.Dom0) - 1
			}
		}
		if m := reDomPage.FindStringSubmatch(l); m != nil && dom >= 0 {
			c.Dom0[dom].NrPages, _ = strconv.ParseInt(m[1], 10, 64)
			c.Dom0[dom].MaxPages, _ = strconv.ParseInt(m[2], 10, 64)
			dom = -1
		}
	}
	return c
}
