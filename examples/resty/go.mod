module github.com/warmpool/warmpool/examples/resty

go 1.26.0

replace github.com/warmpool/warmpool => ../../

require (
	github.com/go-resty/resty/v2 v2.17.2
	github.com/stretchr/testify v1.12.1
	github.com/warmpool/warmpool v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
