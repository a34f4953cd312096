//! The error-correcting code: the CCSDS 231.1-O-1 (128, 64) LDPC code
//! through `labrador-ldpc`, decoded from soft values by min-sum, so a bit
//! read weakly counts for less than one read clearly.

use labrador_ldpc::LDPCCode;

const CODE: LDPCCode = LDPCCode::TC128;

/// The codeword of `payload` as signs: +1 for a 0 bit, −1 for a 1 bit
/// (the decoder's convention: positive means 0).
pub fn encode(payload: u64) -> Vec<f32> {
    let mut codeword = [0u8; 16];
    CODE.copy_encode(&payload.to_be_bytes(), &mut codeword);
    (0..CODE.n())
        .map(|i| {
            if (codeword[i / 8] >> (7 - i % 8)) & 1 == 1 {
                -1.0
            } else {
                1.0
            }
        })
        .collect()
}

/// The payload whose codeword the soft values point to, when the decoder
/// converges on one; `None` when they are noise it cannot settle.
pub fn decode(soft: &[f32]) -> Option<u64> {
    let mut output = vec![0u8; CODE.output_len()];
    let mut working = vec![0f32; CODE.decode_ms_working_len()];
    let mut working_u8 = vec![0u8; CODE.decode_ms_working_u8_len()];
    let (ok, _) = CODE.decode_ms(soft, &mut output, &mut working, &mut working_u8, 50);
    ok.then(|| u64::from_be_bytes(output[..8].try_into().expect("k is 64 bits")))
}
