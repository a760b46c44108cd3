// Package ocm holds the Open Cloud Mesh wire types shared by the whole
// agent: OCM addresses, the discovery document, Share Creation
// Notifications in every dialect real senders use, notifications, invites,
// token requests and error bodies. It decodes and validates; it does no I/O.
//
// Decoding is tolerant of the dialects of real peers (legacy "options",
// "multi", the protocol-object form, "url" for "uri", "sharedBy" for
// "sender") and strict about JSON itself: duplicate keys, excessive
// nesting and wrong types are errors.
package ocm
