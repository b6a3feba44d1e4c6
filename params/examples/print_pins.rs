//! Prints the size and hash of freshly generated development parameters (to update the pins after
//! an intentional circuit change).
fn main() {
    use ark_serialize::CanonicalSerialize;
    let t = std::time::Instant::now();
    let p = shoji_params::dev::generate().expect("setup");
    eprintln!("setup took {:?}", t.elapsed());
    let vk = shoji_params::verifying_key_to_bytes(&p.vk);
    let mut pk = Vec::new();
    p.pk.serialize_uncompressed(&mut pk).expect("serialize");
    println!("pub const DEV_VK_BYTES: usize = {};", vk.len());
    println!(
        "pub const DEV_VK_HASH: &str = \"{}\";",
        blake3::hash(&vk).to_hex()
    );
    println!("pub const DEV_PK_BYTES: usize = {};", pk.len());
    println!(
        "pub const DEV_PK_HASH: &str = \"{}\";",
        blake3::hash(&pk).to_hex()
    );
}
