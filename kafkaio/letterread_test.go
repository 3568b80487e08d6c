package kafkaio

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/schemas"
)

// TestReadLetter_WhatTheLetterSays: a letter built by Letter reads back as
// what it was built from, even when its source message carried forged
// gridlake.* headers of its own; a letter that does not say where its
// message came from, or why, is unreadable and says why.
func TestReadLetter_WhatTheLetterSays(t *testing.T) {
	src := kafka.Message{Topic: schemas.TopicBattery, Partition: 3, Offset: 41, Key: []byte("B-1"), Value: []byte("{"),
		Headers: []kafka.Header{{Key: HeaderReason, Value: []byte("out_of_range")}, {Key: HeaderOffset, Value: []byte("7")}}}
	letter := Letter(src, schemas.Rejection{Reason: schemas.ReasonNotJSON, Field: "voltage_v"})
	with := func(key, value string) []kafka.Header {
		h := append([]kafka.Header(nil), letter.Headers...)
		for i := range h {
			if h[i].Key == key {
				h[i].Value = []byte(value)
			}
		}
		return h
	}
	without := func(key string) []kafka.Header {
		var h []kafka.Header
		for _, x := range letter.Headers {
			if x.Key != key {
				h = append(h, x)
			}
		}
		return h
	}
	for _, tc := range []struct {
		name    string
		headers []kafka.Header
		reason  string
		source  bool
		problem string
	}{
		{"as built, forged source headers ignored", letter.Headers, "not_json", true, ""},
		{"no headers", nil, ReasonUnreadable, false, "missing"},
		{"no offset", without(HeaderOffset), ReasonUnreadable, false, "missing"},
		{"negative partition", with(HeaderPartition, "-1"), ReasonUnreadable, false, "partition"},
		{"partition past int32", with(HeaderPartition, "2147483648"), ReasonUnreadable, false, "partition"},
		{"offset not a number", with(HeaderOffset, "4x"), ReasonUnreadable, false, "offset"},
		{"topic with a slash", with(HeaderTopic, "a/b"), ReasonUnreadable, false, "topic"},
		{"unknown reason", with(HeaderReason, "none"), ReasonUnreadable, true, "reason"},
		{"reason of another case", with(HeaderReason, "NOT_JSON"), ReasonUnreadable, true, "reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			li := ReadLetter(tc.headers)
			if li.Reason != tc.reason || li.HasSource != tc.source || !strings.Contains(li.Problem, tc.problem) || (tc.problem == "") != (li.Problem == "") {
				t.Fatalf("got reason %q source %v problem %q, want %q %v %q", li.Reason, li.HasSource, li.Problem, tc.reason, tc.source, tc.problem)
			}
			if tc.source && (li.Topic != schemas.TopicBattery || li.Partition != 3 || li.Offset != 41) {
				t.Errorf("source %s/%d/%d, want %s/3/41", li.Topic, li.Partition, li.Offset, schemas.TopicBattery)
			}
		})
	}
	li := ReadLetter(letter.Headers)
	if li.Field != "voltage_v" || string(li.Key) != "B-1" || li.Error == "" {
		t.Errorf("field %q key %q error %q", li.Field, li.Key, li.Error)
	}
	if li := ReadLetter(with(HeaderField, strings.Repeat("f", 10_000))); len(li.Field) != maxFieldBytes {
		t.Errorf("a 10,000-byte field kept as %d bytes, want %d", len(li.Field), maxFieldBytes)
	}
}

// TestTruncateText_BoundedValidText: the cut falls between characters,
// invalid bytes become U+FFFD, and the result never exceeds the bound.
func TestTruncateText_BoundedValidText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"éé", 3, "é"},
		{"a\xffb", 10, "a\uFFFDb"},
		{"a\xffb", 3, "a"},
		{"abc", 0, ""},
	} {
		if got := TruncateText([]byte(tc.in), tc.max); got != tc.want {
			t.Errorf("TruncateText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// FuzzReadLetter: whatever a letter's headers hold, reading it neither
// panics nor keeps unbounded or invalid text, and its reason is a code
// gridlake knows or unreadable_letter.
func FuzzReadLetter(f *testing.F) {
	l := Letter(kafka.Message{Topic: schemas.TopicRoom, Partition: 1, Offset: 9, Key: []byte("R-1")}, schemas.Rejection{Reason: schemas.ReasonUnknownType, Field: "type"})
	var seed [][]byte
	for _, h := range l.Headers {
		seed = append(seed, []byte(h.Key), h.Value)
	}
	f.Add(bytes.Join(seed, []byte{0}), 64)
	f.Add([]byte("gridlake.reason\x00not_json\x00gridlake.partition\x0099999999999999999999"), 3)
	f.Fuzz(func(t *testing.T, raw []byte, max int) {
		parts := bytes.Split(raw, []byte{0})
		var hs []kafka.Header
		for i := 0; i+1 < len(parts); i += 2 {
			hs = append(hs, kafka.Header{Key: string(parts[i]), Value: parts[i+1]})
		}
		li := ReadLetter(hs)
		known := li.Reason == ReasonUnreadable
		for _, r := range schemas.Reasons() {
			known = known || li.Reason == r.String()
		}
		if !known || (li.Reason == ReasonUnreadable) != (li.Problem != "") {
			t.Fatalf("reason %q problem %q", li.Reason, li.Problem)
		}
		if len(li.Field) > maxFieldBytes || len(li.Error) > maxErrorBytes || !utf8.ValidString(li.Field) || !utf8.ValidString(li.Error) {
			t.Fatalf("field %q error %q not bounded valid text", li.Field, li.Error)
		}
		if li.HasSource && (li.Partition < 0 || li.Offset < 0 || len(li.Topic) > maxTopicBytes) {
			t.Fatalf("source %q/%d/%d", li.Topic, li.Partition, li.Offset)
		}
		max = max % 1024
		if s := TruncateText(raw, max); len(s) > max && max >= 0 || !utf8.ValidString(s) {
			t.Fatalf("TruncateText(%d) gave %d bytes", max, len(s))
		}
	})
}
