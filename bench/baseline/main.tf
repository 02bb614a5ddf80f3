# Baseline for the first-deploy benchmark: the same job as cloudcode_stack done with Terraform's own features
# only — a terraform_data resource with `file` provisioners uploading the rendered bundle (rendered by
# cloudcode_bundle, the same bytes cloudcode uploads) and the image archives, and `remote-exec` creating the
# host secrets, loading the images and running `docker compose up -d`. No drift detection, no health check,
# no rollback: what a user writes today with public Terraform features.

variable "host" {
  type = string
}

variable "port" {
  type = number
}

variable "private_key_path" {
  type = string
}

# A directory holding the rendered bundle (docker-compose.yml, caddy/, authelia/, devbox/, bin/, .env ...).
variable "bundle_dir" {
  type = string
}

# `docker save` archives of the three images.
variable "image_archives" {
  type = list(string)
}

variable "remote_dir" {
  type    = string
  default = "/opt/cloudcode"
}

resource "terraform_data" "stack" {
  triggers_replace = [var.host, var.port, var.bundle_dir]

  connection {
    type        = "ssh"
    host        = var.host
    port        = var.port
    user        = "root"
    private_key = file(var.private_key_path)
  }

  provisioner "remote-exec" {
    inline = ["mkdir -p ${var.remote_dir} /var/tmp/cloudcode-images"]
  }

  provisioner "file" {
    source      = "${var.bundle_dir}/"
    destination = var.remote_dir
  }

  provisioner "file" {
    source      = var.image_archives[0]
    destination = "/var/tmp/cloudcode-images/0.tar"
  }

  provisioner "file" {
    source      = var.image_archives[1]
    destination = "/var/tmp/cloudcode-images/1.tar"
  }

  provisioner "file" {
    source      = var.image_archives[2]
    destination = "/var/tmp/cloudcode-images/2.tar"
  }

  provisioner "remote-exec" {
    inline = [
      "set -e",
      "cd ${var.remote_dir}",
      "chmod 600 .env 2>/dev/null || true",
      "sh bin/ensure-secrets.sh ${var.remote_dir}",
      "for a in /var/tmp/cloudcode-images/*.tar; do docker load -q -i $a && rm -f $a; done",
      "COMPOSE_PROFILES=blue docker compose -f docker-compose.yml up -d --remove-orphans",
    ]
  }
}
