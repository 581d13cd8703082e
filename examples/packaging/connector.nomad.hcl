# A Nomad system job that runs haproxy-nomad-connector beside HAProxy on every
# edge node. HAProxy runs on the host (Debian's package) in master-worker
# mode, with its admin stats socket and master socket under /run/haproxy, and
# loads the connector's managed file after its own config:
#   haproxy -W -S /run/haproxy/master.sock -f /etc/haproxy/haproxy.cfg -f /etc/haproxy/nomad-connector.cfg
# The three host volumes below must be declared in the nodes' client config
# (client { host_volume "haproxy-run" { path = "/run/haproxy" } ... }).
job "haproxy-nomad-connector" {
  type        = "system"
  datacenters = ["*"]
  node_pool   = "edge"

  group "connector" {
    restart {
      attempts = 10
      interval = "5m"
      delay    = "5s"
      mode     = "delay"
    }

    network {
      port "admin" {
        static = 9180
      }
    }

    volume "haproxy-run" {
      type   = "host"
      source = "haproxy-run"       # /run/haproxy: the stats and master sockets
    }
    volume "haproxy-state" {
      type   = "host"
      source = "haproxy-state"     # /var/lib/haproxy: state and map files
    }
    volume "haproxy-etc" {
      type   = "host"
      source = "haproxy-etc"       # /etc/haproxy: the managed config and HAProxy's own
    }

    task "connector" {
      driver = "exec"

      config {
        command = "/usr/local/bin/haproxy-nomad-connector"
        args    = ["run", "--config", "${NOMAD_TASK_DIR}/connector.toml"]
      }

      # The token (policy: connector-acl.policy.hcl) lives in a Nomad
      # Variable readable by this job: nomad var put nomad/jobs/haproxy-nomad-connector token=...
      template {
        data        = <<-EOT
          NOMAD_ADDR=http://{{ env "attr.unique.network.ip-address" }}:4646
          NOMAD_TOKEN={{ with nomadVar "nomad/jobs/haproxy-nomad-connector" }}{{ .token }}{{ end }}
        EOT
        destination = "secrets/env"
        env         = true
      }

      template {
        data        = <<-EOT
          [haproxy]
          stats_socket = "/run/haproxy/admin.sock"
          master_socket = "/run/haproxy/master.sock"
          managed_config = "/etc/haproxy/nomad-connector.cfg"
          state_file = "/var/lib/haproxy/nomad-connector.state"
          host_map = "/var/lib/haproxy/nomad-connector-hosts.map"
          uri_map = "/var/lib/haproxy/nomad-connector-uris.map"

          [daemon]
          admin_listen = "0.0.0.0:9180"

          [log]
          format = "json"
        EOT
        destination = "local/connector.toml"
        # SIGHUP reloads plugins and settings; other sections need a restart.
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      volume_mount {
        volume      = "haproxy-run"
        destination = "/run/haproxy"
      }
      volume_mount {
        volume      = "haproxy-state"
        destination = "/var/lib/haproxy"
      }
      volume_mount {
        volume      = "haproxy-etc"
        destination = "/etc/haproxy"
      }

      # SIGTERM: the batch in flight finishes; nothing is left half-applied.
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      resources {
        cpu    = 200
        memory = 128
      }

      service {
        name     = "haproxy-nomad-connector"
        provider = "nomad"
        port     = "admin"
        check {
          type     = "http"
          path     = "/readyz"
          interval = "10s"
          timeout  = "2s"
        }
      }
    }
  }
}
