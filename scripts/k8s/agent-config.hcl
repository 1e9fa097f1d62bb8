# leasehold agent as a sidecar: logs in with the pod's projected service account token, keeps
# its token in an in-memory volume only the agent mounts, and renders database credentials to
# the volume it shares with the application, renewing and replacing them as their lease requires.

leasehold {
  address = "https://leasehold.leasehold.svc:8200"
  # The CA that signed the broker's certificate (the leasehold-ca ConfigMap, see README.md).
  ca_cert = "/etc/leasehold/tls/ca.crt"
}

auto_auth {
  method "kubernetes" {
    mount_path = "auth/kubernetes"
    config = {
      role = "app"
      # The projected token (audience "leasehold"), not the default service account token.
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
  # Group-readable: the application runs as another user in the agent's group (runAsGroup 1000).
  perms    = "0640"
  contents = <<EOT
{{- with secret "database/creds/app" -}}
DB_USERNAME={{ .Data.username }}
DB_PASSWORD={{ .Data.password }}
{{ end -}}
EOT
}

# On pod deletion, revoke the database user and the agent's token instead of waiting for their TTLs.
revoke_on_shutdown = true
