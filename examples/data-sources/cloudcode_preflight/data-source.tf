provider "cloudcode" {
  region = "cn-hangzhou"
}

# Before anything is created: a zone with the type in stock, the quota, the balance and the price.
data "cloudcode_preflight" "this" {
  instance_types = ["ecs.e-c1m2.large", "ecs.c7.large"]
}

resource "terraform_data" "deploy_gate" {
  lifecycle {
    precondition {
      condition     = data.cloudcode_preflight.this.ok
      error_message = join("; ", data.cloudcode_preflight.this.problems)
    }
  }
}

output "zone_and_type" {
  value = "${data.cloudcode_preflight.this.instance_type} in ${data.cloudcode_preflight.this.zone}"
}

output "monthly_price" {
  value = "${data.cloudcode_preflight.this.monthly_price} ${data.cloudcode_preflight.this.currency} running, ${data.cloudcode_preflight.this.monthly_price_suspended} suspended"
}
