package fingerprint

import (
	"crypto/tls"
	"slices"

	utls "github.com/bogdanfinn/utls"
)

// utlsConfig translates the crypto/tls settings of config that a browser's
// ClientHello leaves to the client into a utls config. protos is the ALPN
// list the ClientHello offers.
func utlsConfig(config *tls.Config, serverName string, protos []string) *utls.Config {
	uc := &utls.Config{
		Rand:                   config.Rand,
		Time:                   config.Time,
		ServerName:             config.ServerName,
		RootCAs:                config.RootCAs,
		InsecureSkipVerify:     config.InsecureSkipVerify,
		VerifyPeerCertificate:  config.VerifyPeerCertificate,
		NextProtos:             protos,
		SessionTicketsDisabled: config.SessionTicketsDisabled,
		KeyLogWriter:           config.KeyLogWriter,
		// A spec without pre_shared_key (or session_ticket) resumes no
		// session instead of panicking; with one, an empty
		// pre_shared_key is left out of a ClientHello that resumes
		// nothing, as browsers do.
		PreferSkipResumptionOnNilExtension: true,
		OmitEmptyPsk:                       true,
	}
	if uc.ServerName == "" {
		uc.ServerName = serverName
	}
	if v := config.VerifyConnection; v != nil {
		uc.VerifyConnection = func(s utls.ConnectionState) error { return v(stdState(s)) }
	}
	for _, c := range config.Certificates {
		uc.Certificates = append(uc.Certificates, utlsCertificate(&c))
	}
	if get := config.GetClientCertificate; get != nil {
		uc.GetClientCertificate = func(cri *utls.CertificateRequestInfo) (*utls.Certificate, error) {
			c, err := get(&tls.CertificateRequestInfo{
				AcceptableCAs:    cri.AcceptableCAs,
				SignatureSchemes: convertSchemes[tls.SignatureScheme](cri.SignatureSchemes),
				Version:          cri.Version,
			})
			if err != nil || c == nil {
				return nil, err
			}
			uc := utlsCertificate(c)
			return &uc, nil
		}
	}
	return uc
}

// utlsCertificate converts a crypto/tls client certificate.
func utlsCertificate(c *tls.Certificate) utls.Certificate {
	return utls.Certificate{
		Certificate:                  c.Certificate,
		PrivateKey:                   c.PrivateKey,
		SupportedSignatureAlgorithms: convertSchemes[utls.SignatureScheme](c.SupportedSignatureAlgorithms),
		OCSPStaple:                   c.OCSPStaple,
		SignedCertificateTimestamps:  c.SignedCertificateTimestamps,
		Leaf:                         c.Leaf,
	}
}

// convertSchemes converts signature schemes between crypto/tls and utls
// (the same uint16 code points).
func convertSchemes[To, From ~uint16](s []From) []To {
	if s == nil {
		return nil
	}
	out := make([]To, len(s))
	for i, v := range s {
		out[i] = To(v)
	}
	return out
}

// restrictALPN narrows the ALPN extension of spec to the protocols of
// nextProtos and returns the list it offers (nextProtos when spec has no
// ALPN extension). With nextProtos empty, spec is left as it is.
//
// The ALPN list keeps the spec's protocols that nextProtos lists, in the
// spec's order: a browser offering h2 and http/1.1 offers http/1.1 alone on
// a socket that must not speak HTTP/2 (warmpool's upgrade sockets, or
// HTTP/2 turned off). If none is listed, it offers nextProtos itself. The
// ALPS extensions (application_settings, old and new code points) keep only
// the protocols left in ALPN and are removed when none is: Chrome
// configures ALPS only for the protocols it offers in ALPN.
func restrictALPN(spec *utls.ClientHelloSpec, nextProtos []string) []string {
	if len(nextProtos) == 0 {
		for _, e := range spec.Extensions {
			if a, ok := e.(*utls.ALPNExtension); ok {
				return a.AlpnProtocols
			}
		}
		return nil
	}
	var offered []string
	found := false
	for _, e := range spec.Extensions {
		a, ok := e.(*utls.ALPNExtension)
		if !ok {
			continue
		}
		found = true
		var keep []string
		for _, p := range a.AlpnProtocols {
			if slices.Contains(nextProtos, p) {
				keep = append(keep, p)
			}
		}
		if len(keep) == 0 {
			keep = slices.Clone(nextProtos)
		}
		// A new slice, not an edit in place: a custom spec's protocol
		// list may be shared with other handshakes.
		a.AlpnProtocols = keep
		offered = keep
	}
	if !found {
		return slices.Clone(nextProtos)
	}
	spec.Extensions = slices.DeleteFunc(spec.Extensions, func(e utls.TLSExtension) bool {
		switch a := e.(type) {
		case *utls.ApplicationSettingsExtension:
			a.SupportedProtocols = intersect(a.SupportedProtocols, offered)
			return len(a.SupportedProtocols) == 0
		case *utls.ApplicationSettingsExtensionNew:
			a.SupportedProtocols = intersect(a.SupportedProtocols, offered)
			return len(a.SupportedProtocols) == 0
		}
		return false
	})
	return offered
}

// intersect returns the elements of a that b has, in a's order, in a new
// slice.
func intersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// restrictVersions narrows the TLS versions spec offers to
// [minVersion, maxVersion] (zero: no bound): the supported_versions
// extension and the spec's own bounds. A spec within the bounds is left as
// it is. It fails when no version is left.
func restrictVersions(spec *utls.ClientHelloSpec, minVersion, maxVersion uint16) error {
	if minVersion == 0 && maxVersion == 0 {
		return nil
	}
	in := func(v uint16) bool {
		return (minVersion == 0 || v >= minVersion) && (maxVersion == 0 || v <= maxVersion)
	}
	if spec.TLSVersMin != 0 && minVersion > spec.TLSVersMin {
		spec.TLSVersMin = minVersion
	}
	if spec.TLSVersMax != 0 && maxVersion != 0 && maxVersion < spec.TLSVersMax {
		spec.TLSVersMax = maxVersion
	}
	if spec.TLSVersMin != 0 && spec.TLSVersMax != 0 && spec.TLSVersMin > spec.TLSVersMax {
		return errNoVersion(minVersion, maxVersion)
	}
	for _, e := range spec.Extensions {
		sv, ok := e.(*utls.SupportedVersionsExtension)
		if !ok {
			continue
		}
		var keep []uint16
		real := 0
		for _, v := range sv.Versions {
			switch {
			case isGREASE(v):
				keep = append(keep, v)
			case in(v):
				keep = append(keep, v)
				real++
			}
		}
		if real == 0 {
			return errNoVersion(minVersion, maxVersion)
		}
		sv.Versions = keep
	}
	return nil
}

func errNoVersion(minVersion, maxVersion uint16) error {
	return &versionError{minVersion, maxVersion}
}

type versionError struct{ min, max uint16 }

func (e *versionError) Error() string {
	name := func(v uint16) string {
		if v == 0 {
			return "(none)"
		}
		return tls.VersionName(v)
	}
	return "the ClientHello offers no TLS version within tls.Config's MinVersion " +
		name(e.min) + " and MaxVersion " + name(e.max)
}

func (e *versionError) Unwrap() error { return ErrUnsupported }

// isGREASE reports whether v is a GREASE value (RFC 8701): 0x?a?a with
// both bytes equal.
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}
