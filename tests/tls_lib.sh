# A throw-away certificate authority for TLS tests (certtool, Debian's gnutls-bin).  Source
# after tests/lib.sh.
#   make_test_ca [CLIENT_CN]  writes into $TMP: ca.pem/ca.key, srv.pem/srv.key (for
#                 127.0.0.1, by name and IP) and cli.pem/cli.key (a client certificate
#                 with CN CLIENT_CN, default "client"), valid 2 days.  1 on failure, with
#                 certtool's output in $TMP/certtool.log.
make_test_ca() {
  (
    cd "$TMP" || exit 1
    printf 'cn = "FluxRoute test CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >ca.tmpl
    printf 'cn = "127.0.0.1"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n' >srv.tmpl
    printf 'cn = "%s"\ntls_www_client\nsigning_key\nexpiration_days = 2\n' "${1:-client}" >cli.tmpl
    certtool --generate-privkey --key-type=ecdsa --outfile ca.key &&
      certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem &&
      certtool --generate-privkey --key-type=ecdsa --outfile srv.key &&
      certtool --generate-certificate --load-privkey srv.key --load-ca-certificate ca.pem \
        --load-ca-privkey ca.key --template srv.tmpl --outfile srv.pem &&
      certtool --generate-privkey --key-type=ecdsa --outfile cli.key &&
      certtool --generate-certificate --load-privkey cli.key --load-ca-certificate ca.pem \
        --load-ca-privkey ca.key --template cli.tmpl --outfile cli.pem
  ) >"$TMP/certtool.log" 2>&1
}
