# leasehold-1 of the three-node example (docker/ha/compose.yaml). The three files differ only in
# api_addr and cluster_addr: the service name of the node they configure.

# connection_url is left out: it comes from LEASEHOLD_PG_CONNECTION_URL (set in compose.yaml), so the
# database password stays out of this file.
storage "postgresql" {
  ha_enabled = true
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  # Node-to-node traffic (requests a standby forwards to the active): mutual TLS with the cluster's
  # own certificate, which the cluster makes and keeps in its encrypted storage. No files needed.
  cluster_address = "0.0.0.0:8201"
  # Plain HTTP for a local try-out only. In production, set tls_disable = false, mount a certificate
  # and key and set tls_cert_file/tls_key_file (and use https:// in api_addr).
  tls_disable     = true
}

# Where clients (and redirects from standbys) reach THIS node, and where the other nodes reach its
# cluster listener: the compose service name resolves on the compose network.
api_addr     = "http://leasehold-1:8200"
cluster_addr = "https://leasehold-1:8201"

# The key file is made once by the unseal-key service (see compose.yaml for the trade-off).
seal "static" {
  key_file = "/etc/leasehold/seal/unseal.key"
}

log_level = "info"
