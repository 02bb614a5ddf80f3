# Values the alicloud mock returns: real-looking ids and addresses, so the cloudcode provider's own checks
# (instance ids, host addresses) see what the real provider would give them.

mock_data "alicloud_zones" {
  defaults = {
    ids = ["ap-southeast-1b", "ap-southeast-1c"]
  }
}

mock_data "alicloud_images" {
  defaults = {
    ids = ["ubuntu_24_04_x64_20G_alibase_20250101.vhd"]
  }
}

mock_data "alicloud_alidns_domains" {
  defaults = {
    names = ["example.com", "dev.example.com", "other.org"]
  }
}

mock_resource "alicloud_instance" {
  defaults = {
    id = "i-t4n0000000000000001"
  }
}

mock_resource "alicloud_eip_address" {
  defaults = {
    id         = "eip-t4n0000000000000001"
    ip_address = "47.236.10.20"
  }
}

mock_resource "alicloud_image" {
  defaults = {
    id = "m-t4n0000000000000001"
  }
}
