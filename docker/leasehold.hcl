# Default configuration of the container image. Mount your own at /etc/leasehold/leasehold.hcl.
storage "sqlite" {
  path = "/var/lib/leasehold/leasehold.db"
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  # Terminate TLS here in production: set tls_disable = false and mount tls_cert_file/tls_key_file.
  tls_disable = true
}

default_lease_ttl = "768h"
max_lease_ttl     = "768h"
log_level         = "info"
