//! `shoji-params`: generates (once) and checks the insecure development parameters in the cache
//! directory (`$SHOJI_PARAMS_DIR`, else `~/.cache/shoji`), and prints where they are.

fn main() -> std::process::ExitCode {
    let dir = shoji_params::default_dir();
    match shoji_params::dev::load_or_generate(&dir) {
        Ok(_) => {
            println!(
                "development parameters (INSECURE, for local networks only) in {}",
                dir.display()
            );
            println!(
                "  verifying key {} (blake3 {})",
                shoji_params::vk_file(),
                shoji_params::DEV_VK_HASH
            );
            println!("  proving key   {}", shoji_params::pk_file());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
