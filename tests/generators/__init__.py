"""Small fixture generators, one per dataset, writing files in the exact published layouts."""
