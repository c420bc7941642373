module github.com/warmpool/warmpool/fingerprint

go 1.26.0

replace github.com/warmpool/warmpool => ../

require (
	github.com/bogdanfinn/utls v1.7.4-barnius
	github.com/stretchr/testify v1.12.1
	github.com/warmpool/warmpool v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
	golang.org/x/crypto v0.58.0
	golang.org/x/net v0.62.0
)

require (
	github.com/andybalholm/brotli v1.0.6 // indirect
	github.com/cloudflare/circl v1.5.0 // indirect
	github.com/klauspost/compress v1.17.4 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
