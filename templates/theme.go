package templates

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DefaultPrimaryColor is the theme's colour when ui.primary_color is unset.
const DefaultPrimaryColor = "#2456c8"

// The page colours the brand colour must stand out from: the card and the
// page background of style.css.
var (
	cardColor = rgb{0xff, 0xff, 0xff}
	pageColor = rgb{0xf3, 0xf5, 0xf8}
)

type rgb struct{ r, g, b uint8 }

func (c rgb) String() string { return fmt.Sprintf("#%02x%02x%02x", c.r, c.g, c.b) }

// ParseColor accepts a CSS hex colour, #rgb or #rrggbb, and returns it as
// #rrggbb in lower case.
func ParseColor(s string) (string, error) {
	c, err := parseColor(s)
	if err != nil {
		return "", err
	}
	return c.String(), nil
}

func parseColor(s string) (rgb, error) {
	hex, ok := strings.CutPrefix(s, "#")
	if ok && len(hex) == 3 {
		hex = string([]byte{hex[0], hex[0], hex[1], hex[1], hex[2], hex[2]})
	}
	if !ok || len(hex) != 6 {
		return rgb{}, fmt.Errorf("%q is not a CSS hex colour like #2456c8 or #25c", s)
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return rgb{}, fmt.Errorf("%q is not a CSS hex colour like #2456c8 or #25c", s)
	}
	return rgb{uint8(v >> 16), uint8(v >> 8), uint8(v)}, nil
}

// luminance is the WCAG 2.1 relative luminance.
func (c rgb) luminance() float64 {
	lin := func(v uint8) float64 {
		s := float64(v) / 255
		if s <= 0.04045 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.r) + 0.7152*lin(c.g) + 0.0722*lin(c.b)
}

// Contrast is the WCAG 2.1 contrast ratio of two colours, 1 to 21.
func contrast(a, b rgb) float64 {
	la, lb := a.luminance(), b.luminance()
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// aaText is WCAG 2.1 AA's minimum contrast for body text (1.4.3).
const aaText = 4.5

// Theme is the brand colour and the colours derived from it so that every
// use passes WCAG 2.1 AA, whatever colour the operator chose.
type Theme struct {
	// Primary fills buttons.
	Primary string
	// OnPrimary is the text on Primary: white or near-black, whichever
	// contrasts more (one of them always reaches 4.5:1).
	OnPrimary string
	// Ink is Primary darkened until it reaches 4.5:1 on the card and the
	// page background: for links, outlined buttons and focus rings.
	Ink string
}

// NewTheme derives a theme from a CSS hex colour ("" is the default).
func NewTheme(primary string) (Theme, error) {
	if primary == "" {
		primary = DefaultPrimaryColor
	}
	c, err := parseColor(primary)
	if err != nil {
		return Theme{}, err
	}
	white, dark := rgb{0xff, 0xff, 0xff}, rgb{0x11, 0x18, 0x27}
	on := white
	if contrast(c, white) < aaText && contrast(c, dark) > contrast(c, white) {
		on = dark
	}
	ink := c
	for f := 1.0; contrast(ink, cardColor) < aaText || contrast(ink, pageColor) < aaText; f -= 0.05 {
		f = max(f, 0)
		ink = rgb{uint8(float64(c.r) * f), uint8(float64(c.g) * f), uint8(float64(c.b) * f)}
		if f == 0 {
			break
		}
	}
	return Theme{Primary: c.String(), OnPrimary: on.String(), Ink: ink.String()}, nil
}

// CSS is the style sheet that sets the theme's colours; style.css reads
// them as custom properties. It is a file, not an inline style, so the
// pages' CSP needs no 'unsafe-inline'.
func (t Theme) CSS() string {
	return fmt.Sprintf(":root{--primary:%s;--on-primary:%s;--ink:%s}\n", t.Primary, t.OnPrimary, t.Ink)
}
