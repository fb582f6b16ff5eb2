package main

import (
	"strconv"
	"time"
)

// The result shapes of the control ops tmemctl uses, mirrored from
// cmd/xen-tmemd/control.go (package main there, so it cannot be imported).
// The direct backend produces exactly these; the daemon sends a superset
// ("list" also carries the parsed records, which tmemctl parses itself from
// "text" so that both paths share one parser).

// listResult answers "list".
type listResult struct {
	Text    string            `json:"text"`    // the raw LIST text, as Xen wrote it
	Names   map[string]string `json:"names"`   // domid → name
	Domains []listDomain      `json:"domains"` // Xen's domain list, with names
	Time    time.Time         `json:"time"`
	Version string            `json:"xen"`
}

// listDomain is a domain of Xen's list, with its name.
type listDomain struct {
	ID       uint16 `json:"id"`
	Name     string `json:"name"`
	TotPages uint64 `json:"tot_pages"`
	MaxPages uint64 `json:"max_pages"`
}

// statusResult is the part of "status" tmem-top shows.
type statusResult struct {
	Mode        string `json:"mode"` // xen or sim
	Xen         string `json:"xen"`
	Generation  string `json:"generation"`
	Tmem        string `json:"tmem"`
	TmemOK      bool   `json:"tmem_available"`
	TotalKiB    uint64 `json:"total_kib"`
	FreeKiB     uint64 `json:"free_kib"`
	FreeableMiB uint64 `json:"freeable_mib"`
	Domains     int    `json:"domains"`
	Clients     int    `json:"tmem_clients"`
}

// freeableResult answers "freeable".
type freeableResult struct {
	FreeableMiB uint64 `json:"freeable_mib"`
}

// flushResult answers "flush".
type flushResult struct {
	FreedKiB uint64 `json:"freed_kib"`
}

// sharedAuthResult answers "shared-auth".
type sharedAuthResult struct {
	Changed bool `json:"changed"`
}

// poolCreateResult answers "pool-create".
type poolCreateResult struct {
	Pools []int `json:"pools"`
}

// reserveResult answers "reserve".
type reserveResult struct {
	Done       bool   `json:"done"`
	Reason     string `json:"reason"`
	FlushedKiB uint64 `json:"flushed_kib"`
}

// domainName is the daemon's naming rule: a known name, else Domain-0 for
// dom0 and domN for the others.
func domainName(names map[string]string, id uint16) string {
	if n := names[strconv.Itoa(int(id))]; n != "" {
		return n
	}
	if id == 0 {
		return "Domain-0"
	}
	return "dom" + strconv.Itoa(int(id))
}
