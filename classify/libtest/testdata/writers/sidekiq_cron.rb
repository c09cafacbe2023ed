# sidekiq-cron (Debian's ruby-sidekiq-cron) writing its cron job
# definitions into a real Redis through its public API with its defaults,
# for classify/libtest's scan accuracy test.
# usage: ruby sidekiq_cron.rb WRITER HOST PORT DB   (exit 77 without it)
begin
  require "sidekiq"
  require "sidekiq-cron"
rescue LoadError
  exit 77
end
writer, host, port, db = ARGV
Sidekiq.configure_client { |c| c.redis = { url: "redis://#{host}:#{port}/#{db}" } }
Sidekiq.logger.level = Logger::WARN
%w[nightly_report weekly_digest cleanup_carts sync_stock send_reminders rotate_logs
   refresh_sitemap expire_coupons reindex_search backup_orders].each_with_index do |name, i|
  job = Sidekiq::Cron::Job.new(name: name, cron: "#{i} 3 * * *", class: "ShopJob", args: [i], queue: "default")
  raise job.errors.join(", ") unless job.save
end
