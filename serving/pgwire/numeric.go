package pgwire

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"strings"

	"github.com/marcboeker/go-duckdb"
)

// appendNumeric appends the binary form of PostgreSQL's numeric for a
// decimal text (-123.4500): base-10000 digits around the decimal point,
// the weight of the first, the sign and the scale.
func appendNumeric(dst []byte, s string) ([]byte, error) {
	const (
		pos, neg = 0x0000, 0x4000
	)
	sign := uint16(pos)
	if strings.HasPrefix(s, "-") {
		sign, s = neg, s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" && frac == "" || strings.Trim(intPart+frac, "0123456789") != "" {
		return dst, fmt.Errorf("%q is not a decimal number", s)
	}
	scale := len(frac)
	// Pad both parts to whole groups of four digits.
	if r := len(intPart) % 4; r != 0 {
		intPart = strings.Repeat("0", 4-r) + intPart
	}
	if r := len(frac) % 4; r != 0 {
		frac += strings.Repeat("0", 4-r)
	}
	all := intPart + frac
	digits := make([]uint16, 0, len(all)/4)
	for i := 0; i < len(all); i += 4 {
		var d uint16
		for _, c := range all[i : i+4] {
			d = d*10 + uint16(c-'0')
		}
		digits = append(digits, d)
	}
	weight := len(intPart)/4 - 1
	for len(digits) > 0 && digits[0] == 0 { // leading zero groups
		digits = digits[1:]
		weight--
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 { // trailing zero groups
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		weight, sign = 0, pos
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(digits)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
	dst = binary.BigEndian.AppendUint16(dst, sign)
	dst = binary.BigEndian.AppendUint16(dst, uint16(scale))
	for _, d := range digits {
		dst = binary.BigEndian.AppendUint16(dst, d)
	}
	return dst, nil
}

// decimalText is a DuckDB decimal as PostgreSQL prints a numeric: exact,
// with its scale's digits after the point.
func decimalText(d duckdb.Decimal) string {
	if d.Value == nil {
		return "0"
	}
	digits := new(big.Int).Abs(d.Value).String()
	scale := int(d.Scale)
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if d.Value.Sign() < 0 {
		return "-" + digits
	}
	return digits
}
