use clap::Parser;

fn main() {
    unclip::memory::keep_freed_buffers();
    let cli = unclip::cli::Cli::parse();
    unclip::device::set_verbose(cli.verbose);
    if cli.command.is_none() {
        // No command: the desktop app.
        if let Err(e) = unclip::app::run(
            cli.model,
            cli.device,
            unclip::app::LaunchFlags {
                smoke: cli.smoke,
                open: cli.open,
                half_precision: cli.dtype.map(|p| p == unclip::cli::Precision::F16),
                release_stages: cli.release_stages,
            },
        ) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = unclip::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
