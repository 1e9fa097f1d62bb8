# leasehold agent as an init container: logs in, renders the database credentials once and
# exits, so the application container starts with /run/secrets/db.env in place. Nothing renews
# the lease afterwards: give the role a TTL that covers the pod's life, or use the sidecar.

leasehold {
  address = "https://leasehold.leasehold.svc:8200"
  ca_cert = "/etc/leasehold/tls/ca.crt"
}

exit_after_auth = true

auto_auth {
  method "kubernetes" {
    mount_path = "auth/kubernetes"
    config = {
      role       = "app"
      token_path = "/var/run/secrets/tokens/leasehold"
    }
  }

  sink "file" {
    config = {
      path = "/run/leasehold/token"
      mode = "0600"
    }
  }
}

template {
  destination = "/run/secrets/db.env"
  perms       = "0640"
  contents    = <<EOT
{{- with secret "database/creds/app" -}}
DB_USERNAME={{ .Data.username }}
DB_PASSWORD={{ .Data.password }}
{{ end -}}
EOT
}
