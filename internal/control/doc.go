// Package control is the xen-tmemd control API: the request and reply types,
// their codec, a client, and a server that dispatches to handlers.
//
// # Wire format
//
// One JSON object per line over a unix socket (mode 0600; the server also
// checks the peer's credentials). A request is
//
//	{"v":1,"id":7,"op":"freeze","args":{"domain":"web1"}}
//
// and its reply
//
//	{"v":1,"id":7,"ok":true,"result":{...}}
//	{"v":1,"id":7,"ok":false,"error":{"code":"no-domain","message":"..."}}
//
// The version "v" must be 1. Requests on one connection are answered in
// order. The "events" op turns the connection into a stream of
// {"v":1,"event":{...}} lines until the client closes it.
//
// A malformed request gets an error reply and changes nothing; the decoder
// has a fuzz target. docs/control-api.md documents every op.
package control
